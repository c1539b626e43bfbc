"""The chain source port: what a deposit watcher needs from a chain, and the decisions of a
step that every implementation makes alike.

`ChainFollower` is the implementation over a node's JSON-RPC; `chains.fake.FakeChain` an
in-memory chain of made-up blocks for tests.
"""

import itertools
from collections.abc import Sequence
from typing import Protocol

from chains.model import Advance, BlockHeader, Rollback, StepResult, WatchedAddresses


class ChainSource(Protocol):
    def head(self) -> int:
        """The number of the newest block."""
        ...

    def step(
        self,
        known_window: Sequence[BlockHeader],
        watched: WatchedAddresses,
        max_blocks: int = 250,
        head: int | None = None,
        senders: WatchedAddresses | None = None,
    ) -> StepResult:
        """The blocks after the window's tip, up to `head`, scanned for transfers to `watched`
        and transactions sent by `senders`; or a rollback to the newest header of the window
        still canonical (see ChainFollower)."""
        ...


def check_step(known_window: Sequence[BlockHeader], max_blocks: int) -> None:
    """Refuse a step's arguments that no chain could answer."""
    if max_blocks < 1:
        raise ValueError("max_blocks must be at least 1")
    for prev, cur in itertools.pairwise(known_window):
        if cur.number != prev.number + 1:
            raise ValueError(f"known window is not consecutive at block {cur.number}")


def step_range(
    known_window: Sequence[BlockHeader], head: int, start_block: int | None, max_blocks: int
) -> tuple[int, int]:
    """The first and last block a step fetches (none when last < first): those after the
    window's tip, or from `start_block` (else the head) when the window is empty; at most
    `max_blocks`, none above `head`."""
    if known_window:
        first = known_window[-1].number + 1
    else:
        first = head if start_block is None else start_block
    return first, min(head, first + max_blocks - 1)


def walk_back(
    window: Sequence[BlockHeader], canonical: Sequence[str | None], head: int
) -> StepResult:
    """Where a step goes when the window's tip is no longer what the chain holds: back to the
    newest header of `window` still canonical. `canonical` is the chain's hash at each of the
    window's numbers (None above the chain's head).

    If nothing the window holds was replaced, at most the chain is behind us (a lagging
    replica, or a reorg that undid itself): the step waits for it, with no blocks.
    """
    replaced = False
    for known, hash_ in zip(reversed(window), reversed(canonical), strict=True):
        if hash_ is None:
            continue  # above the chain's head
        if hash_ == known.hash:
            return Rollback(ancestor=known) if replaced else Advance((), head)
        replaced = True
    return Rollback(ancestor=None) if replaced else Advance((), head)
