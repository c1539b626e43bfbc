"""Ethereum's logs bloom (yellow paper, section 4.3.1): whether a block may hold a given log.

A block's `logsBloom` is a 2048-bit filter of the addresses and topics of all its logs. Each
value sets three bits, taken from the first three byte pairs of its keccak-256 hash (eleven
low bits each). A value whose bits are not all set is certainly absent; one whose bits are all
set is probably present (other values can set the same bits).
"""

from dataclasses import dataclass

from eth_utils.crypto import keccak

BLOOM_BITS = 2048
_HEX_LENGTH = 2 + BLOOM_BITS // 4  # "0x" and a hex digit per four bits
# The hex digits (either case) with each of a digit's four bits set.
_DIGITS_WITH = tuple(
    "".join(digit for digit in "0123456789abcdefABCDEF" if int(digit, 16) >> bit & 1)
    for bit in range(4)
)


@dataclass(frozen=True, slots=True)
class BloomMask:
    """The bits some values set in a bloom, as the bloom read as a big-endian number."""

    bits: int
    digits: tuple[tuple[int, str], ...]
    """Each set bit as its hex digit's index in a "0x"-prefixed bloom and the digits that have
    it set: a follower tests every block's bloom, and looking at six digits is much cheaper
    than reading all 512 as a number."""


def bloom_mask(*values: bytes) -> BloomMask:
    """The bits that `values` set in a bloom."""
    bits = 0
    for value in values:
        digest = keccak(value)
        for i in (0, 2, 4):
            bits |= 1 << (int.from_bytes(digest[i : i + 2], "big") & (BLOOM_BITS - 1))
    digits = tuple(
        (_HEX_LENGTH - 1 - bit // 4, _DIGITS_WITH[bit % 4])
        for bit in range(BLOOM_BITS)
        if bits >> bit & 1
    )
    return BloomMask(bits, digits)


def may_contain(bloom: str, mask: BloomMask) -> bool:
    """Whether a hex `logsBloom` has every bit of `mask` set: the values may be in the block."""
    if len(bloom) != _HEX_LENGTH:
        return int(bloom, 16) & mask.bits == mask.bits  # not the usual shape: read it whole
    for index, digits in mask.digits:  # noqa: SIM110 - a loop is 4x cheaper than all()
        if bloom[index] not in digits:
            return False
    return True
