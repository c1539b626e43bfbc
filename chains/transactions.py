"""Unsigned EIP-1559 transactions for native ETH and ERC-20 transfers, and their gas limits."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from chains.abi import erc20_transfer_data
from chains.fees import FeeQuote
from chains.model import normalize_address
from chains.rpc import RpcClient

ETH_TRANSFER_GAS: Final = 21_000
# Enough for a plain ERC-20 transfer (about 35,000 to 52,000 gas, more for a first-time
# recipient), far below what a misbehaving token could burn.
ERC20_TRANSFER_GAS: Final = 100_000
_UINT256_LIMIT: Final = 2**256


@dataclass(frozen=True, slots=True)
class TransactionRequest:
    """An unsigned EIP-1559 transaction; `to` is lowercase hex, amounts in wei.

    Its fields are what `custody`'s signers read (their `UnsignedTransaction` protocol).
    """

    chain_id: int
    nonce: int
    to: str
    value: int
    data: bytes
    gas: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def __post_init__(self) -> None:
        if self.chain_id < 1 or self.nonce < 0 or self.gas < ETH_TRANSFER_GAS:
            raise ValueError("chain id >= 1, nonce >= 0 and gas >= 21000 are required")
        if not 0 <= self.value < _UINT256_LIMIT:
            raise ValueError("the value must fit a uint256")
        object.__setattr__(self, "to", normalize_address(self.to))
        FeeQuote(self.max_fee_per_gas, self.max_priority_fee_per_gas)

    @property
    def fees(self) -> FeeQuote:
        return FeeQuote(self.max_fee_per_gas, self.max_priority_fee_per_gas)

    @classmethod
    def of_signed(cls, raw_transaction: bytes) -> TransactionRequest:
        """The request a signed EIP-1559 transaction was made from (for its replacement)."""
        # A slow import, needed only by what replaces a transaction.
        from eth_account.typed_transactions.typed_transaction import (  # noqa: PLC0415
            TypedTransaction,
        )
        from hexbytes import HexBytes  # noqa: PLC0415

        fields = TypedTransaction.from_bytes(HexBytes(raw_transaction)).as_dict()
        return cls(
            chain_id=fields["chainId"],
            nonce=fields["nonce"],
            to="0x" + bytes(fields["to"]).hex(),
            value=fields["value"],
            data=bytes(fields["data"]),
            gas=fields["gas"],
            max_fee_per_gas=fields["maxFeePerGas"],
            max_priority_fee_per_gas=fields["maxPriorityFeePerGas"],
        )

    def with_fees(self, fees: FeeQuote) -> TransactionRequest:
        """The same transaction (same nonce) with other fees: a replacement."""
        return dataclasses.replace(
            self,
            max_fee_per_gas=fees.max_fee_per_gas,
            max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        )

    def max_cost(self) -> int:
        """The most ETH (wei) the sender can spend on it: value plus gas at the fee cap."""
        return self.value + self.fees.max_cost(self.gas)


def native_transfer(
    *, chain_id: int, nonce: int, to: str, amount: int, fees: FeeQuote
) -> TransactionRequest:
    """Send `amount` wei of ETH to `to`."""
    return TransactionRequest(
        chain_id=chain_id,
        nonce=nonce,
        to=to,
        value=amount,
        data=b"",
        gas=ETH_TRANSFER_GAS,
        max_fee_per_gas=fees.max_fee_per_gas,
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
    )


def token_transfer(
    *,
    chain_id: int,
    nonce: int,
    token: str,
    to: str,
    amount: int,
    fees: FeeQuote,
    gas: int = ERC20_TRANSFER_GAS,
) -> TransactionRequest:
    """Call `token.transfer(to, amount)`; `amount` is in the token's smallest unit."""
    return TransactionRequest(
        chain_id=chain_id,
        nonce=nonce,
        to=token,
        value=0,
        data=erc20_transfer_data(to, amount),
        gas=gas,
        max_fee_per_gas=fees.max_fee_per_gas,
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
    )


def estimate_gas(rpc: RpcClient, sender: str, request: TransactionRequest) -> int:
    """The node's `eth_estimateGas` for the request sent by `sender`, against `latest`.

    A call that would revert (for instance a token transfer the sender cannot cover) raises
    the node's `RpcResponseError`.
    """
    call = {
        "from": normalize_address(sender),
        "to": request.to,
        "value": hex(request.value),
        "data": "0x" + request.data.hex(),
    }
    return int(rpc.call("eth_estimateGas", call, "latest"), 16)
