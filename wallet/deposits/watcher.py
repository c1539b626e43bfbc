"""The deposit watcher of one chain: chain source steps recorded in one transaction each.

`DepositWatcher.step` is the unit of work: ask the chain source (`chains.ChainSource`) for its
head, load deposit addresses issued since the last step, let the source fetch and link the
next blocks (or report a reorg), then write headers, deposits, ledger entries, events and the
cursor in one database transaction, fenced by the cursor it started from. While catching up,
the next step's fetch runs on a thread during this step's write; it only reads, and is used
only by a step that starts from the window it was fetched for. `DepositWatcher.run` loops
over steps while holding the chain's lease; node and database failures are logged and
retried, never taken for "no deposits". What it cannot go on from by itself (a reorg deeper
than the header window, stored state that contradicts the chain, a node serving another
chain) halts the chain: the halt and its reason are stored (`wallet.deposits.chain_states`)
and the watcher stays up, holding the lease, reading the stored state until an operator
resumes the chain. `wallet watch --chain NAME` runs `watch`.
"""

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from chains import (
    AddressSet,
    Advance,
    BlockHeader,
    ChainFollower,
    ChainSource,
    NodeUnreachable,
    RpcClient,
    RpcError,
    ScannedBlock,
    StepResult,
    TraceMode,
    WrongChain,
    next_window,
)
from wallet.assets.service import Catalogue, Chain
from wallet.database import run_transaction, unit_of_work
from wallet.deposits import repository
from wallet.deposits.arrivals import ChainAssets, DepositChanges
from wallet.deposits.chain_states import halted_state, record_halt
from wallet.deposits.errors import (
    InconsistentChainState,
    LeaseLost,
    ReorgBeyondWindow,
    StaleWindow,
    WatcherHalted,
)
from wallet.deposits.lease import ChainLease
from wallet.deposits.window import load_window, lock_cursor, record_advance, record_rollback
from wallet.withdrawals.service import hot_wallet_addresses

logger = logging.getLogger(__name__)


MAX_POLL_INTERVAL = 0.5
MIN_POLL_INTERVAL = 0.1


def poll_interval_for(chain: Chain) -> float:
    """A fifth of the chain's block time, between 0.1 and 0.5 s: a block is seen at most a
    fifth of a block after it is mined (half a second on slow chains), and a node is asked
    for its head at most ten times a second."""
    return min(MAX_POLL_INTERVAL, max(MIN_POLL_INTERVAL, chain.block_time / 5))


@dataclass(frozen=True)
class WatcherOptions:
    poll_interval: float | None = None
    """Seconds between steps once caught up with the node's head; by default
    `poll_interval_for` the chain."""
    batch_blocks: int = 500
    """At most this many blocks per step (one database transaction)."""
    window_size: int = 256
    """Headers kept per chain: reorgs up to this depth are followed; must exceed confirmations."""
    max_retry_interval: float = 2.0
    """Longest wait between retries after node or database failures: a node or database
    that is back is used again within this time."""
    halt_poll_interval: float = 1.0
    """Seconds between reads of a halted chain's stored state, waiting for its resume."""


@dataclass(frozen=True)
class StepOutcome:
    head: int
    """The node's head when the step began."""
    tip: BlockHeader | None
    """The newest accepted block after the step."""
    blocks: int = 0
    """Blocks accepted by this step."""
    rolled_back_to: BlockHeader | None = None
    changes: DepositChanges = field(default_factory=DepositChanges)

    @property
    def caught_up(self) -> bool:
        return self.rolled_back_to is None and (self.tip is None or self.tip.number >= self.head)


@dataclass(frozen=True)
class _Fetched:
    """The chain's head when a fetch began, and what the source found after the window."""

    head: int
    result: StepResult


class _Prefetch:
    """A fetch for the blocks after `window`, run on a thread of its own."""

    def __init__(
        self, window: list[BlockHeader], fetch: Callable[[list[BlockHeader]], _Fetched]
    ) -> None:
        self.window = window
        self._fetched: _Fetched | None = None
        self._error: Exception | None = None
        self._thread = threading.Thread(
            target=self._run, args=(fetch,), name="deposit-prefetch", daemon=True
        )
        self._thread.start()

    def _run(self, fetch: Callable[[list[BlockHeader]], _Fetched]) -> None:
        try:
            self._fetched = fetch(self.window)
        except Exception as error:  # raised by the step that uses the fetch, as its own
            self._error = error

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> _Fetched:
        self.wait()
        if self._error is not None:
            raise self._error
        assert self._fetched is not None
        return self._fetched


class DepositWatcher:
    """Follows one chain and records the deposits to its deposit addresses."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        catalogue: Catalogue,
        chain: str,
        source: ChainSource,
        options: WatcherOptions | None = None,
    ) -> None:
        self.options = options or WatcherOptions()
        self.assets = ChainAssets.of(catalogue, chain)
        if self.options.window_size <= self.assets.chain.confirmations:
            raise ValueError("the header window must be longer than the confirmations needed")
        self._poll_interval = self.options.poll_interval or poll_interval_for(self.assets.chain)
        self._sessions = sessions
        self._source = source
        self._watched = AddressSet()
        """The chain's deposit addresses."""
        self._hot_wallets = AddressSet()
        """The chain's hot wallets: their transactions are matched to withdrawals."""
        self._last_index = -1
        self._window: list[BlockHeader] | None = None
        self._prefetch: _Prefetch | None = None
        self.lease: ChainLease | None = None
        """When set, every write first checks that the lease is still held."""
        self._halt_seen: tuple[str | None, datetime] | None = None
        """The stored halt (reason, since) last logged; None: running."""

    @property
    def chain(self) -> str:
        return self.assets.name

    @property
    def window(self) -> list[BlockHeader]:
        return list(self._window or ())

    @property
    def watched_count(self) -> int:
        return len(self._watched)

    def load(self) -> None:
        """(Re)load the stored header window."""
        if self._prefetch is not None:
            self._prefetch.wait()  # kept: the window reloaded may be the one it was for
        with unit_of_work(self._sessions) as session:
            self._window = load_window(session, self.chain, self.options.window_size)
        if not self._window:
            logger.info("%s: no cursor yet; starting where the chain source starts", self.chain)

    def step(self) -> StepOutcome:
        """One chain source step, recorded in one database transaction."""
        if self._window is None:
            self.load()
        assert self._window is not None
        window = self._window
        fetched = self._prefetched(window) or self._fetch(window)
        head, result = fetched.head, fetched.result
        tip = window[-1] if window else None

        if isinstance(result, Advance):
            blocks = result.blocks
            if not blocks:
                return StepOutcome(head=head, tip=tip)
            advanced = next_window(window, result, self.options.window_size)
            if blocks[-1].header.number < head:
                # Catching up: the next blocks are fetched while these are written. Should the
                # write fail, the window stays as it was and the fetch is not used.
                self._prefetch = _Prefetch(advanced, self._fetch)
            changes = self._write(tip, lambda s: self._advance(s, blocks))
            self._window = advanced
            return StepOutcome(head, blocks[-1].header, blocks=len(blocks), changes=changes)

        ancestor = result.ancestor
        if ancestor is None:
            raise ReorgBeyondWindow(
                f"{self.chain}: none of the last {len(window)} stored blocks is canonical any "
                "more; deposits credited in the replaced blocks must be checked by hand"
            )
        changes = self._write(tip, lambda s: record_rollback(s, self.assets, ancestor))
        self._window = next_window(window, result, self.options.window_size)
        return StepOutcome(head, ancestor, rolled_back_to=ancestor, changes=changes)

    def _fetch(self, window: list[BlockHeader]) -> _Fetched:
        """Read the chain's head and new deposit addresses, then let the chain source step."""
        # The head is read before the address set is loaded: every block up to it was mined
        # before any address issued after the load, so no block scanned here can pay an
        # address the set lacks. The source fetches no block above it.
        head = self._source.head()
        self._load_new_addresses()
        step = self._source.step(
            window, self._watched, self.options.batch_blocks, head, senders=self._hot_wallets
        )
        return _Fetched(head, step)

    def _prefetched(self, window: list[BlockHeader]) -> _Fetched | None:
        """The fetch started by the last step, if it was for `window` (its write succeeded)."""
        prefetch, self._prefetch = self._prefetch, None
        if prefetch is None:
            return None
        prefetch.wait()  # it uses the source and the address set: never two at once
        return prefetch.result() if prefetch.window == window else None

    def _advance(self, session: Session, blocks: Sequence[ScannedBlock]) -> DepositChanges:
        return record_advance(session, self.assets, blocks, window_size=self.options.window_size)

    def _write(
        self, tip: BlockHeader | None, work: Callable[[Session], DepositChanges]
    ) -> DepositChanges:
        """Run `work` in one transaction, fenced by the cursor this watcher last wrote."""
        if self.lease is not None:
            self.lease.check()

        def fenced(session: Session) -> DepositChanges:
            cursor = lock_cursor(session, self.chain)
            stored = None if cursor is None else (cursor.block_number, cursor.block_hash)
            if stored != (None if tip is None else (tip.number, tip.hash)):
                raise StaleWindow(f"{self.chain}: the cursor is at {stored}, not at our tip")
            return work(session)

        return run_transaction(self._sessions, fenced)

    def _load_new_addresses(self) -> None:
        # Indexes commit in allocation order (see wallet.deposits.service), so reading past
        # the highest index seen so far never skips an address.
        # One array rather than a row per address: rows cost several times more to read.
        with unit_of_work(self._sessions) as session:
            last, addresses = session.execute(
                repository.ADDRESSES_AFTER,
                {"chain": self.chain, "last": self._last_index},
            ).one()
            hot_wallets = hot_wallet_addresses(session, self.chain)
        if last is not None:
            for address in addresses:
                self._watched.add(address)
            self._last_index = last
        for address in hot_wallets:
            self._hot_wallets.add(address)

    def run(self, lease: ChainLease, stop: threading.Event) -> None:
        """Follow the chain until `stop` is set: take the lease (waiting for it), then step."""
        self.lease = lease
        try:
            while not stop.is_set():
                if not lease.acquire(stop):
                    return
                logger.info("%s: watcher active (lease held)", self.chain)
                try:
                    self._follow(stop)
                except LeaseLost as error:
                    logger.warning("%s; stepping down", error)
        finally:
            lease.release()

    def _follow(self, stop: threading.Event) -> None:
        self._window = None  # whatever a predecessor wrote is the truth now
        failures = 0
        halt: str | None = None  # found by a step, not recorded yet
        halted = True  # may be: a halt stored before this start stands until a resume
        while not stop.is_set():
            try:
                if halt is not None:
                    self._record_halt(halt)
                    halt, halted = None, True
                if halted:
                    if self._halted():
                        stop.wait(self.options.halt_poll_interval)
                        continue
                    halted = False
                    self._window = None  # a resume rebuilt it
                outcome = self.step()
            except (WatcherHalted, InconsistentChainState, WrongChain) as error:
                halt = str(error)
                continue
            except NodeUnreachable as error:
                failures += 1
                delay = self._retry_delay(failures)
                logger.warning(
                    "%s: node unreachable (%s); nothing recorded, retrying in %.1f s",
                    self.chain,
                    error,
                    delay,
                )
                stop.wait(delay)
                continue
            except RpcError as error:
                failures += 1
                delay = self._retry_delay(failures)
                logger.error("%s: node error: %s; retrying in %.1f s", self.chain, error, delay)
                stop.wait(delay)
                continue
            except StaleWindow as error:
                logger.warning("%s; reloading the stored window", error)
                self._window = None
                continue
            except DBAPIError as error:
                failures += 1
                delay = self._retry_delay(failures)
                logger.error(
                    "%s: database error: %s; retrying in %.1f s",
                    self.chain,
                    error.orig or error,
                    delay,
                )
                self._window = None  # the commit may or may not have happened
                stop.wait(delay)
                continue
            if failures:
                logger.info("%s: node and database answer again; resuming", self.chain)
                failures = 0
            _log_outcome(self.chain, outcome)
            if outcome.caught_up:
                stop.wait(self._poll_interval)

    def _record_halt(self, reason: str) -> None:
        if self.lease is not None:
            self.lease.check()
        chain = self.assets.chain
        if run_transaction(self._sessions, lambda session: record_halt(session, chain, reason)):
            logger.critical(
                "%s: watcher halted: %s; nothing more is recorded on this chain until an "
                "operator resumes it (wallet chain resume, see docs/operations.md)",
                self.chain,
                reason,
            )

    def _halted(self) -> bool:
        """Whether the chain stands halted; logged when that changes."""
        if self.lease is not None:
            self.lease.check()
        with unit_of_work(self._sessions) as session:
            state = halted_state(session, self.chain)
            halted = None if state is None else (state.reason, state.since)
        if halted != self._halt_seen:
            if halted is None:
                logger.warning("%s: resumed by an operator; following the chain again", self.chain)
            else:
                logger.warning(
                    "%s: halted since %s: %s; waiting for an operator to resume it",
                    self.chain,
                    f"{halted[1]:%Y-%m-%d %H:%M:%S %Z}",
                    halted[0],
                )
            self._halt_seen = halted
        return halted is not None

    def _retry_delay(self, failures: int) -> float:
        return min(self.options.max_retry_interval, 0.25 * (1 << min(failures, 10)))


def _log_outcome(chain: str, outcome: StepOutcome) -> None:
    changes = outcome.changes
    if outcome.rolled_back_to is not None:
        return  # logged by record_rollback
    if changes or outcome.blocks >= 100:
        logger.info(
            "%s: block %s (head %d): +%d blocks, %d seen, %d credited, %d held (wallet frozen), "
            "%d below minimum",
            chain,
            None if outcome.tip is None else outcome.tip.number,
            outcome.head,
            outcome.blocks,
            len(changes.seen),
            len(changes.credited),
            len(changes.held),
            len(changes.below_minimum),
        )


def chain_follower(
    catalogue: Catalogue,
    chain: str,
    rpc: RpcClient,
    *,
    trace_mode: TraceMode = TraceMode.NONE,
    start_block: int | None = None,
) -> ChainFollower:
    """The follower of `chain` over `rpc`, scanning for its configured assets.

    `start_block` is where a chain with no cursor yet starts; None: the node's head then.
    It checks the node's chain id before its first step.
    """
    return ChainFollower(
        rpc,
        tokens=ChainAssets.of(catalogue, chain).follower_tokens(),
        trace_mode=trace_mode,
        start_block=start_block,
        chain_id=catalogue.chain(chain).chain_id,
    )


def watch(
    sessions: sessionmaker[Session],
    engine: Engine,
    catalogue: Catalogue,
    chain: str,
    source: ChainSource,
    *,
    options: WatcherOptions | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run the watcher of `chain` until SIGTERM or SIGINT (or `stop`)."""
    stop = stop or threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("%s: signal %d received; stopping after the current step", chain, signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    watcher = DepositWatcher(sessions, catalogue, chain, source, options)
    freeze_startup_objects()
    watcher.run(ChainLease.for_engine(engine, chain), stop)


def freeze_startup_objects() -> None:
    """Leave what exists once the watcher is built (modules, models, schemas: it lives as
    long as the process) out of the garbage collector's full passes. Each pass otherwise
    walks all of it, a stall of tens of milliseconds that catching up meets every few steps."""
    gc.freeze()


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.Formatter.converter = time.gmtime
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per RPC request otherwise
