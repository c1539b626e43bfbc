"""ABI encoding of calls whose arguments are all static words (address or uint256)."""

from __future__ import annotations

from eth_utils.crypto import keccak

from chains.model import normalize_address

ERC20_TRANSFER = "transfer(address,uint256)"


def encode_call(signature: str, *args: str | int) -> str:
    """ABI-encode a call whose arguments are all static words (address or uint256)."""
    selector = keccak(text=signature)[:4].hex()
    words = []
    for arg in args:
        if isinstance(arg, str):
            words.append(normalize_address(arg)[2:].rjust(64, "0"))
        elif 0 <= arg < 2**256:
            words.append(format(arg, "064x"))
        else:
            raise ValueError(f"uint256 out of range: {arg}")
    return "0x" + selector + "".join(words)


def erc20_transfer_data(to: str, amount: int) -> bytes:
    """Calldata of ERC-20 `transfer(to, amount)`."""
    return bytes.fromhex(encode_call(ERC20_TRANSFER, to, amount)[2:])
