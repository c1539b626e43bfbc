"""The chain source port: what a deposit watcher needs from a chain.

`ChainFollower` is the implementation over a node's JSON-RPC; `chains.fake.FakeChain` an
in-memory chain of made-up blocks for tests.
"""

from collections.abc import Sequence
from typing import Protocol

from chains.model import BlockHeader, StepResult, WatchedAddresses


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
    ) -> StepResult:
        """The blocks after the window's tip, up to `head`, scanned for transfers to `watched`;
        or a rollback to the newest header of the window still canonical (see ChainFollower)."""
        ...
