"""Plain values the chain adapter hands to its caller: block headers, transfers, step results."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

# Identity index of a top-level ETH transfer: (tx_hash, TOP_LEVEL_INDEX).
TOP_LEVEL_INDEX = -1

_HEX_DIGITS = frozenset("0123456789abcdef")


def normalize_address(address: str) -> str:
    """Return `address` as lowercase 0x-prefixed hex; ValueError if it is not 20 bytes of hex."""
    a = address.lower()
    if len(a) != 42 or not a.startswith("0x") or not _HEX_DIGITS.issuperset(a[2:]):
        raise ValueError(f"not a 20-byte hex address: {address!r}")
    return a


def trace_index(call_position: int) -> int:
    """Identity index of an internal ETH transfer made by the call frame at `call_position`.

    Call frames of a transaction are numbered in depth-first pre-order, the top-level call being
    0 (parity `trace_block` order, and the nesting order of geth's callTracer). The index is
    -(1 + position): the top-level call maps to TOP_LEVEL_INDEX (-1), internal calls to -2, -3, ...
    so they never collide with log indexes (>= 0) of the same transaction.
    """
    if call_position < 0:
        raise ValueError("call_position must be >= 0")
    return -1 - call_position


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The part of a block header the follower needs to link blocks; hashes are lowercase hex."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class NativeTransfer:
    """ETH (in wei) received by a watched address, top-level or through an internal call.

    Identity is (tx_hash, index): index is TOP_LEVEL_INDEX for the transaction's own value and
    `trace_index(position)` (<= -2) for an internal call.
    """

    block_number: int
    block_hash: str
    tx_hash: str
    index: int
    from_address: str
    to_address: str
    amount: int

    @property
    def identity(self) -> tuple[str, int]:
        return (self.tx_hash, self.index)

    @property
    def is_internal(self) -> bool:
        return self.index != TOP_LEVEL_INDEX


@dataclass(frozen=True, slots=True)
class TokenTransfer:
    """An ERC-20 Transfer event to a watched address; amount is in the token's smallest unit."""

    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    token: str
    asset: str
    from_address: str
    to_address: str
    amount: int

    @property
    def identity(self) -> tuple[str, int]:
        return (self.tx_hash, self.log_index)


@dataclass(frozen=True, slots=True)
class SentTransaction:
    """A transaction of a watched sender (a hot wallet), with its receipt's outcome."""

    block_number: int
    block_hash: str
    tx_hash: str
    from_address: str
    nonce: int
    succeeded: bool
    fee: int
    """Gas used times the effective gas price, in wei."""


@dataclass(frozen=True, slots=True)
class ScannedBlock:
    """One accepted block with the transfers to watched addresses found in it, and the
    transactions of watched senders."""

    header: BlockHeader
    native_transfers: tuple[NativeTransfer, ...] = ()
    token_transfers: tuple[TokenTransfer, ...] = ()
    sent: tuple[SentTransaction, ...] = ()


@dataclass(frozen=True, slots=True)
class Advance:
    """The chain grew by `blocks` (possibly none), each linked to the one before it.

    `head` is the node's latest block number when the step began, for counting confirmations.
    """

    blocks: tuple[ScannedBlock, ...]
    head: int

    @property
    def headers(self) -> tuple[BlockHeader, ...]:
        return tuple(b.header for b in self.blocks)


@dataclass(frozen=True, slots=True)
class Rollback:
    """Blocks above `ancestor` are no longer canonical; forget everything found in them.

    `ancestor` is None when no block of the known window is canonical any more: the reorg is
    deeper than the window and the caller must decide where to resume.
    """

    ancestor: BlockHeader | None


StepResult = Advance | Rollback


class WatchedAddresses(Protocol):
    """What the follower needs of a watched-address collection: membership of lowercase hex."""

    def __contains__(self, address: str, /) -> bool: ...


class AddressSet:
    """A compact set of addresses (20-byte keys) with O(1) membership by hex string.

    Holds 100,000 addresses in about 10 MB; `in` accepts hex in any letter case.
    """

    __slots__ = ("_keys",)

    def __init__(self, addresses: Iterable[str] = ()) -> None:
        self._keys: set[bytes] = {_key(a) for a in addresses}

    def add(self, address: str) -> None:
        self._keys.add(_key(address))

    def discard(self, address: str) -> None:
        self._keys.discard(_key(address))

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or len(address) != 42:
            return False
        try:
            return bytes.fromhex(address[2:]) in self._keys
        except ValueError:
            return False

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return ("0x" + k.hex() for k in self._keys)


def _key(address: str) -> bytes:
    return bytes.fromhex(normalize_address(address)[2:])


def next_window(window: Sequence[BlockHeader], result: StepResult, keep: int) -> list[BlockHeader]:
    """Return the known window after applying `result`, holding at most the last `keep` headers.

    After a Rollback with no ancestor the window is empty, so the follower restarts at its
    `start_block`; a caller that wants another resume point must choose one itself.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    if isinstance(result, Advance):
        merged = [*window, *result.headers]
        return merged[-keep:]
    if result.ancestor is None:
        return []
    return [h for h in window if h.number <= result.ancestor.number][-keep:]
