// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Forwarder
/// @notice Passes ETH on through an internal call, so deposits can arrive without a top-level
///         transaction to the recipient. It has no receive function: plain ETH sent to it reverts.
contract Forwarder {
    error ForwardFailed();
    error Undone();

    event Forwarded(address indexed to, uint256 value);

    /// @notice Sends all of msg.value on to `to`.
    function forward(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        if (!ok) revert ForwardFailed();
        emit Forwarded(to, msg.value);
    }

    /// @notice Forwards msg.value in a sub-call that then reverts, and swallows the failure:
    ///         the transaction succeeds, the forwarder keeps the ETH and `to` receives nothing.
    function forwardInRevertedCall(address payable to) external payable {
        (bool ok, ) = address(this).call{value: msg.value}(
            abi.encodeCall(this.forwardThenRevert, (to))
        );
        ok; // the failure is the point
    }

    /// @notice Forwards msg.value to `to`, then reverts the whole call.
    function forwardThenRevert(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        ok;
        revert Undone();
    }
}
