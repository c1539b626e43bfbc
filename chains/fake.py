"""An in-memory chain of made-up blocks, a `ChainSource` for tests: no node, no network.

A test scripts it: `pay` queues ETH or token transfers, `mine` puts them in new blocks,
`reorg` replaces the newest blocks (their transfers dropped, or kept to be mined again in
the next block, as a node re-mines a transaction a reorg removed). `step` answers as
`ChainFollower.step` does over a node serving this chain.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chains.model import (
    TOP_LEVEL_INDEX,
    Advance,
    BlockHeader,
    NativeTransfer,
    ScannedBlock,
    StepResult,
    TokenTransfer,
    WatchedAddresses,
    normalize_address,
)
from chains.source import check_step, step_range, walk_back

GENESIS_TIMESTAMP = 1_700_000_000
BLOCK_TIME = 12
SENDER = "0x" + "5e" * 20


@dataclass(frozen=True, slots=True)
class Payment:
    """A transfer waiting to be mined: ETH when `token` is None, else that token's."""

    tx_hash: str
    to_address: str
    amount: int
    token: str | None = None
    from_address: str = SENDER


@dataclass(frozen=True, slots=True)
class _Block:
    header: BlockHeader
    payments: tuple[Payment, ...]


class FakeChain:
    """A chain whose blocks a test makes; block 0 exists from the start.

    `tokens` maps token contract address to asset code, as `ChainFollower` takes them;
    `start_block` is where a step with an empty window starts (None: the head).
    """

    def __init__(
        self, *, tokens: Mapping[str, str] | None = None, start_block: int | None = 0
    ) -> None:
        self._tokens = {normalize_address(a): code for a, code in (tokens or {}).items()}
        self._start_block = start_block
        self._salt = secrets.token_hex(8)
        self._serial = itertools.count()
        self._pending: list[Payment] = []
        self._blocks: list[_Block] = []
        self._append(())

    def head(self) -> int:
        return len(self._blocks) - 1

    def header(self, number: int) -> BlockHeader:
        """The canonical header at `number`."""
        return self._blocks[number].header

    def pay(
        self, to: str, amount: int, *, token: str | None = None, tx_hash: str | None = None
    ) -> str:
        """Queue a transfer for the next block; returns its transaction hash."""
        if token is not None and normalize_address(token) not in self._tokens:
            raise ValueError(f"token {token} is not one of the chain's tokens")
        payment = Payment(
            tx_hash=tx_hash or self._hash("tx"),
            to_address=normalize_address(to),
            amount=amount,
            token=None if token is None else normalize_address(token),
        )
        self._pending.append(payment)
        return payment.tx_hash

    def mine(self, count: int = 1) -> int:
        """Mine `count` blocks, the queued transfers in the first; returns the last number."""
        for _ in range(count):
            payments, self._pending = tuple(self._pending), []
            self._append(payments)
        return self.head()

    def reorg(self, depth: int, *, remine: bool = False) -> None:
        """Drop the newest `depth` blocks (never block 0); the next `mine` builds another branch.

        With `remine`, their transfers are queued again, as a node keeps a reorged
        transaction in its pool and mines it again.
        """
        if not 0 < depth < len(self._blocks):
            raise ValueError(f"cannot drop {depth} of {len(self._blocks)} blocks")
        dropped = self._blocks[-depth:]
        del self._blocks[-depth:]
        if remine:
            self._pending[:0] = [p for block in dropped for p in block.payments]

    def step(
        self,
        known_window: Sequence[BlockHeader],
        watched: WatchedAddresses,
        max_blocks: int = 250,
        head: int | None = None,
        senders: WatchedAddresses | None = None,
    ) -> StepResult:
        # Made-up blocks carry payments only: no sender of ours ever appears in them.
        check_step(known_window, max_blocks)
        head = self.head() if head is None else min(head, self.head())
        if known_window and self._hash_at(known_window[-1].number) != known_window[-1].hash:
            canonical = [self._hash_at(known.number) for known in known_window]
            return walk_back(known_window, canonical, head)
        first, last = step_range(known_window, head, self._start_block, max_blocks)
        blocks = self._blocks[first : last + 1]
        return Advance(tuple(self._scan(block, watched) for block in blocks), head)

    def _hash_at(self, number: int) -> str | None:
        return self.header(number).hash if number <= self.head() else None

    def _scan(self, block: _Block, watched: WatchedAddresses) -> ScannedBlock:
        header = block.header
        natives: list[NativeTransfer] = []
        tokens: list[TokenTransfer] = []
        log_index = 0  # each token transfer emits one log
        for payment in block.payments:
            if payment.token is None:
                if payment.to_address in watched:
                    natives.append(
                        NativeTransfer(
                            block_number=header.number,
                            block_hash=header.hash,
                            tx_hash=payment.tx_hash,
                            index=TOP_LEVEL_INDEX,
                            from_address=payment.from_address,
                            to_address=payment.to_address,
                            amount=payment.amount,
                        )
                    )
                continue
            if payment.to_address in watched:
                tokens.append(
                    TokenTransfer(
                        block_number=header.number,
                        block_hash=header.hash,
                        tx_hash=payment.tx_hash,
                        log_index=log_index,
                        token=payment.token,
                        asset=self._tokens[payment.token],
                        from_address=payment.from_address,
                        to_address=payment.to_address,
                        amount=payment.amount,
                    )
                )
            log_index += 1
        return ScannedBlock(header, tuple(natives), tuple(tokens))

    def _append(self, payments: tuple[Payment, ...]) -> None:
        number = len(self._blocks)
        parent = self._blocks[-1].header.hash if self._blocks else "0x" + "00" * 32
        header = BlockHeader(
            number=number,
            hash=self._hash("block"),
            parent_hash=parent,
            timestamp=GENESIS_TIMESTAMP + number * BLOCK_TIME,
        )
        self._blocks.append(_Block(header, payments))

    def _hash(self, kind: str) -> str:
        """A made-up 32-byte hash, unique to this chain."""
        made_up = f"{kind}-{self._salt}-{next(self._serial)}"
        return "0x" + hashlib.sha256(made_up.encode()).hexdigest()
