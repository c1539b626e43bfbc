"""Ethereum's logs bloom (yellow paper, section 4.3.1): whether a block may hold a given log.

A block's `logsBloom` is a 2048-bit filter of the addresses and topics of all its logs. Each
value sets three bits, taken from the first three byte pairs of its keccak-256 hash (eleven
low bits each). A value whose bits are not all set is certainly absent; one whose bits are all
set is probably present (other values can set the same bits).
"""

from eth_utils.crypto import keccak


def bloom_mask(*values: bytes) -> int:
    """The bits that `values` set in a bloom, as an int (the bloom read as a big-endian number)."""
    mask = 0
    for value in values:
        digest = keccak(value)
        for i in (0, 2, 4):
            mask |= 1 << (int.from_bytes(digest[i : i + 2], "big") & 2047)
    return mask


def may_contain(bloom: str, mask: int) -> bool:
    """Whether a hex `logsBloom` has every bit of `mask` set: the values may be in the block."""
    return int(bloom, 16) & mask == mask
