"""The deposit watcher of one chain: follower steps recorded in one transaction each.

`DepositWatcher.step` is the unit of work: ask the node for its head, load deposit addresses
issued since the last step, let the follower fetch and link the next blocks (or report a
reorg), then write headers, deposits, ledger entries, events and the cursor in one database
transaction, fenced by the cursor it started from. While catching up, the next step's fetch
runs on a thread during this step's write; it only reads, and is used only by a step that
starts from the window it was fetched for. `DepositWatcher.run` loops over steps while
holding the chain's lease; node and database failures are logged and retried, never taken
for "no deposits". `wallet watch --chain NAME` runs `watch`.
"""

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from chains import (
    AddressSet,
    Advance,
    BlockHeader,
    ChainFollower,
    NodeUnreachable,
    RpcClient,
    RpcError,
    ScannedBlock,
    StepResult,
    TraceMode,
    fetch_header,
    next_window,
)
from wallet.assets.service import Catalogue
from wallet.database import run_transaction, unit_of_work
from wallet.deposits.arrivals import ChainAssets, DepositChanges
from wallet.deposits.errors import LeaseLost, ReorgBeyondWindow, StaleWindow
from wallet.deposits.lease import ChainLease
from wallet.deposits.window import load_window, lock_cursor, record_advance, record_rollback
from wallet.withdrawals.repository import hot_wallets as withdrawal_hot_wallets

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatcherOptions:
    poll_interval: float = 0.5
    """Seconds between steps once caught up with the node's head."""
    batch_blocks: int = 500
    """At most this many blocks per step (one database transaction)."""
    window_size: int = 256
    """Headers kept per chain: reorgs up to this depth are followed; must exceed confirmations."""
    start_block: int | None = None
    """Where a chain with no cursor yet starts; None: the node's head at the first start."""
    trace_mode: TraceMode = TraceMode.NONE
    """How internal ETH transfers are found (TraceMode.PARITY or CALL_TRACER where supported)."""
    max_retry_interval: float = 10.0
    """Longest wait between retries after node or database failures."""


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
    """The node's head when a fetch began, and what the follower found after the window."""

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
        rpc: RpcClient,
        options: WatcherOptions | None = None,
    ) -> None:
        self.options = options or WatcherOptions()
        self.assets = ChainAssets.of(catalogue, chain)
        if self.options.window_size <= self.assets.chain.confirmations:
            raise ValueError("the header window must be longer than the confirmations needed")
        self._sessions = sessions
        self._rpc = rpc
        self._watched = AddressSet()
        """The chain's deposit addresses."""
        self._hot_wallets = AddressSet()
        """The chain's hot wallets: their transactions are matched to withdrawals."""
        self._last_index = -1
        self._window: list[BlockHeader] | None = None
        self._follower: ChainFollower | None = None
        self._prefetch: _Prefetch | None = None
        self.lease: ChainLease | None = None
        """When set, every write first checks that the lease is still held."""

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
        """(Re)load the stored header window; the follower checks the node's chain id first."""
        if self._prefetch is not None:
            self._prefetch.wait()  # kept: the window reloaded may be the one it was for
        with unit_of_work(self._sessions) as session:
            window = load_window(session, self.chain, self.options.window_size)
        start = self.options.start_block
        if not window and start is None:
            head = fetch_header(self._rpc)
            start = 0 if head is None else head.number
            logger.info("%s: no cursor yet; starting at the head, block %d", self.chain, start)
        self._follower = ChainFollower(
            self._rpc,
            tokens=self.assets.follower_tokens(),
            trace_mode=self.options.trace_mode,
            start_block=start or 0,
            chain_id=self.assets.chain.chain_id,
        )
        self._window = window

    def step(self) -> StepOutcome:
        """One follower step, recorded in one database transaction."""
        if self._window is None or self._follower is None:
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
        """Read the node's head and new deposit addresses, then let the follower step."""
        assert self._follower is not None
        # The head is read before the address set is loaded: every block up to it was mined
        # before any address issued after the load, so no block scanned here can pay an
        # address the set lacks. The follower fetches no block above it.
        head = int(self._rpc.call("eth_blockNumber"), 16)
        self._load_new_addresses()
        step = self._follower.step(
            window, self._watched, self.options.batch_blocks, head, senders=self._hot_wallets
        )
        return _Fetched(head, step)

    def _prefetched(self, window: list[BlockHeader]) -> _Fetched | None:
        """The fetch started by the last step, if it was for `window` (its write succeeded)."""
        prefetch, self._prefetch = self._prefetch, None
        if prefetch is None:
            return None
        prefetch.wait()  # it uses the follower and the address set: never two at once
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
                text(
                    "SELECT max(derivation_index), array_agg(address) FROM deposit_addresses "
                    "WHERE chain = :chain AND derivation_index > :last"
                ),
                {"chain": self.chain, "last": self._last_index},
            ).one()
            hot_wallets = withdrawal_hot_wallets(session, self.chain)
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
        while not stop.is_set():
            try:
                outcome = self.step()
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
                stop.wait(self.options.poll_interval)

    def _retry_delay(self, failures: int) -> float:
        return min(self.options.max_retry_interval, 0.25 * (1 << min(failures, 10)))


def _log_outcome(chain: str, outcome: StepOutcome) -> None:
    changes = outcome.changes
    if outcome.rolled_back_to is not None:
        return  # logged by record_rollback
    if changes or outcome.blocks >= 100:
        logger.info(
            "%s: block %s (head %d): +%d blocks, %d seen, %d credited, %d below minimum",
            chain,
            None if outcome.tip is None else outcome.tip.number,
            outcome.head,
            outcome.blocks,
            len(changes.seen),
            len(changes.credited),
            len(changes.below_minimum),
        )


def watch(
    sessions: sessionmaker[Session],
    engine: Engine,
    catalogue: Catalogue,
    chain: str,
    *,
    options: WatcherOptions | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run the watcher of `chain` until SIGTERM or SIGINT (or `stop`)."""
    config = catalogue.chain(chain)
    stop = stop or threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("%s: signal %d received; stopping after the current step", chain, signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    logger.info("%s: following %s (chain id %d)", chain, config.rpc_url, config.chain_id)
    with RpcClient(config.rpc_url) as rpc:
        watcher = DepositWatcher(sessions, catalogue, chain, rpc, options)
        watcher.run(ChainLease.for_engine(engine, chain), stop)


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.Formatter.converter = time.gmtime
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per RPC request otherwise
