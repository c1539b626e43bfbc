"""The withdrawal broadcaster: each chain's hot wallet signs and sends, writing ahead.

For each batch of withdrawals (`sign_batch`), in this order, each step committed before the
next (DESIGN section 7):

1. in one transaction, under the lock of the hot wallet's nonce row: check that the hot
   wallet covers each (else `waiting_liquidity`, no nonce taken), give those covered the next
   nonces, sign them in one batch, store each raw transaction and its hash (an attempt) and
   move them to `signed`;
2. send the stored bytes in one JSON-RPC batch, then record each of the node's answers,
   classified (`broadcast`, or `unknown` when it cannot be told whether the node took it).

A run first sends again what is stored and not known to be accepted (`signed`, `unknown`):
after a crash at any line the same bytes go out, never a new transaction for the nonce.
Only a fee bump signs again for a nonce: a transaction pending longer than `bump_after`, or
refused as underpriced, is replaced with the same nonce and fees raised by at least 12.5 %
(capped). A sent transaction the node no longer knows (dropped, or removed by a reorg) is
sent again from its stored bytes. Mined transactions are the watcher's to confirm.

`wallet.withdrawals.broadcast` runs this for every chain on the beat's schedule; one run per
chain at a time (a PostgreSQL advisory lock): a run reckons the hot wallet's liquidity once
and counts on no other run signing meanwhile. Nonces are safe without it (the row lock).
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Final

from celery import Celery
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from chains import (
    UNDERPRICED_SENDS,
    FeeCapReached,
    FeePolicy,
    FeeQuote,
    RpcClient,
    RpcError,
    SendOutcome,
    SendResult,
    TransactionRequest,
    TransactionState,
    quote_fees,
    replacement_fees,
    send_raw_transactions,
    transaction_statuses,
)
from custody import KeySigner, SignedTransaction, Signer
from wallet.assets.service import Asset, AssetKind, Catalogue, Chain
from wallet.database import run_transaction
from wallet.deposits.addresses import bip44_account, load_master_seed
from wallet.settings import Settings
from wallet.withdrawals.liquidity import HotWalletLiquidity, hot_wallet_liquidity
from wallet.withdrawals.models import Withdrawal, WithdrawalAttempt, WithdrawalStatus
from wallet.withdrawals.repository import (
    SentAttempt,
    attempts_by_hash,
    attempts_of,
    lock_withdrawals,
    locked_withdrawal,
    locked_withdrawals,
    outgoing,
    unmined_attempts,
)
from wallet.withdrawals.service import (
    advance_hot_wallet_nonce,
    fee_policy,
    lock_hot_wallet_nonce,
    transfer_request,
    transition_many,
)

logger = logging.getLogger(__name__)

BROADCAST_WITHDRAWALS: Final = "wallet.withdrawals.broadcast"

_SIGNABLE = (WithdrawalStatus.QUEUED, WithdrawalStatus.WAITING_LIQUIDITY)
_UNCONFIRMED_SEND = (WithdrawalStatus.SIGNED, WithdrawalStatus.UNKNOWN)


@dataclass(frozen=True)
class HotWallet:
    """A chain's hot wallet: its signer and its node."""

    chain: Chain
    signer: Signer
    rpc: RpcClient

    @property
    def address(self) -> str:
        return self.signer.address.lower()


@dataclass(frozen=True)
class BroadcastOptions:
    fee_policy: FeePolicy
    bump_after: timedelta
    """How long a sent transaction may stay unmined before it is replaced with higher fees."""
    batch: int = 1_000
    """At most this many queued withdrawals are read per run (then it looks after those sent)."""
    sign_batch: int = 200
    """Withdrawals signed in one database transaction and sent in one JSON-RPC batch."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "BroadcastOptions":
        return cls(fee_policy(settings), timedelta(seconds=settings.withdrawal_bump_after))


@dataclass
class BroadcastReport:
    """What one run did, by withdrawal id."""

    signed: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    bumped: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.signed, self.sent, self.waiting, self.unknown, self.bumped))


@dataclass(frozen=True)
class _Stored:
    """A signed attempt as stored, to be sent."""

    withdrawal_id: str
    tx_hash: str
    raw_transaction: bytes

    @classmethod
    def of(cls, attempt: WithdrawalAttempt | SentAttempt) -> "_Stored":
        return cls(attempt.withdrawal_id, attempt.tx_hash, attempt.raw_transaction)


def _latest_attempt(session: Session, withdrawal_id: str) -> _Stored:
    return _Stored.of(attempts_of(session, withdrawal_id)[-1])


class WithdrawalBroadcaster:
    """Signs and sends one chain's withdrawals from its hot wallet."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        catalogue: Catalogue,
        hot: HotWallet,
        options: BroadcastOptions,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._catalogue = catalogue
        self._hot = hot
        self._options = options
        self._chain = hot.chain.name

    def run(self) -> BroadcastReport:
        """One pass: re-send what is stored, sign and send what is queued, bump or re-send
        what is stuck. Skipped if another run holds the chain."""
        report = BroadcastReport()
        with self._engine.connect() as lock:
            key = {"key": f"withdrawals:{self._chain}"}
            if not lock.execute(text("SELECT pg_try_advisory_lock(hashtext(:key))"), key).scalar():
                return report
            try:
                self._send(self._stored_unsent(), report)
                self._sign_queued(report)
                self._track_sent(report)
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), key)
        return report

    def _read(self, work: Callable[[Session], list[str]]) -> list[str]:
        return run_transaction(self._sessions, work)

    def _stored_unsent(self) -> list[_Stored]:
        """The latest attempt of each withdrawal not known to be accepted by a node."""
        ids = self._read(lambda s: outgoing(s, self._chain, _UNCONFIRMED_SEND, 10_000))
        return [
            run_transaction(self._sessions, partial(_latest_attempt, withdrawal_id=i)) for i in ids
        ]

    def _sign_queued(self, report: BroadcastReport) -> None:
        """Sign and send the queued withdrawals, oldest first and `sign_batch` at a time, until
        none is left (one waiting for liquidity is read once per run), up to `batch` read per
        run."""
        size = self._options.sign_batch
        passed_over: list[str] = []  # read, not signed: still signable, not to be read again

        def queued(session: Session) -> list[str]:
            return outgoing(session, self._chain, _SIGNABLE, size, excluding=passed_over)

        ids = self._read(queued)
        if not ids:
            return
        fees = self._market_fees()
        if fees is None:
            return
        liquidity = run_transaction(self._sessions, self._liquidity)
        read = 0
        while ids:
            sign = partial(
                self._sign, withdrawal_ids=ids, fees=fees, liquidity=liquidity, report=report
            )
            stored = run_transaction(self._sessions, sign)
            self._send(stored, report)
            signed = {s.withdrawal_id for s in stored}
            passed_over += [i for i in ids if i not in signed]
            read += len(ids)
            if len(ids) < size or read >= self._options.batch:
                return
            ids = self._read(queued)

    def _sign(
        self,
        session: Session,
        withdrawal_ids: Sequence[str],
        fees: FeeQuote,
        liquidity: HotWalletLiquidity,
        report: BroadcastReport,
    ) -> list[_Stored]:
        """Step 1 of the write-ahead order for several withdrawals, in the caller's
        transaction: consecutive nonces from the locked nonce row, signed in one batch."""
        first = nonce = lock_hot_wallet_nonce(
            session, self._chain, self._hot.address, self._hot.rpc
        )
        signing: list[tuple[Withdrawal, TransactionRequest]] = []
        waiting: list[Withdrawal] = []
        # Those cancelled, or taken by another run meanwhile, are left out.
        for withdrawal in locked_withdrawals(session, withdrawal_ids, _SIGNABLE):
            asset = self._catalogue.asset(withdrawal.asset)
            request = self._transaction(withdrawal, asset, nonce, fees)
            if not liquidity.take(asset, withdrawal.amount, request.max_cost()):
                if withdrawal.status != WithdrawalStatus.WAITING_LIQUIDITY:
                    waiting.append(withdrawal)
                    report.waiting.append(withdrawal.id)
                continue
            signing.append((withdrawal, request))
            nonce += 1
        transition_many(session, self._catalogue, waiting, WithdrawalStatus.WAITING_LIQUIDITY)
        if nonce == first:
            return []
        signed = self._hot.signer.sign_batch([request for _, request in signing])
        stored = []
        for (withdrawal, request), transaction in zip(signing, signed, strict=True):
            stored.append(self._store(session, withdrawal, request, transaction))
            withdrawal.sender, withdrawal.nonce = self._hot.address, request.nonce
            report.signed.append(withdrawal.id)
        withdrawals = [withdrawal for withdrawal, _ in signing]
        transition_many(session, self._catalogue, withdrawals, WithdrawalStatus.SIGNED)
        advance_hot_wallet_nonce(session, self._chain, self._hot.address, nonce - 1)
        return stored

    def _liquidity(self, session: Session) -> HotWalletLiquidity:
        return hot_wallet_liquidity(
            session, self._catalogue, self._chain, self._hot.address, self._hot.rpc
        )

    def _market_fees(self) -> FeeQuote | None:
        quote = quote_fees(self._hot.rpc, self._options.fee_policy)
        if isinstance(quote, FeeCapReached):
            logger.warning(
                "%s: network fees need %d wei/gas, above the cap of %d: withdrawals wait",
                self._chain,
                quote.required_max_fee_per_gas,
                quote.cap,
            )
            return None
        return quote

    def _transaction(
        self, withdrawal: Withdrawal, asset: Asset, nonce: int, fees: FeeQuote
    ) -> TransactionRequest:
        return transfer_request(
            self._hot.chain,
            asset,
            nonce=nonce,
            to=withdrawal.address,
            amount=withdrawal.amount,
            fees=fees,
        )

    def _store(
        self,
        session: Session,
        withdrawal: Withdrawal,
        request: TransactionRequest,
        signed: SignedTransaction,
    ) -> _Stored:
        tx_hash = "0x" + signed.transaction_hash.hex()
        session.add(
            WithdrawalAttempt(
                tx_hash=tx_hash,
                withdrawal_id=withdrawal.id,
                chain=self._chain,
                nonce=request.nonce,
                raw_transaction=signed.raw_transaction,
                max_fee_per_gas=request.max_fee_per_gas,
                max_priority_fee_per_gas=request.max_priority_fee_per_gas,
                gas=request.gas,
                signed_at=datetime.now(UTC),
            )
        )
        return _Stored(withdrawal.id, tx_hash, signed.raw_transaction)

    def _send(self, stored: Sequence[_Stored], report: BroadcastReport) -> None:
        """Step 2: send the stored bytes (in one batch), then record what each of the node's
        answers means (in one transaction)."""
        if not stored:
            return
        results = send_raw_transactions(self._hot.rpc, [s.raw_transaction for s in stored])

        def record(session: Session) -> None:
            withdrawals = lock_withdrawals(session, [s.withdrawal_id for s in stored])
            attempts = attempts_by_hash(session, [s.tx_hash for s in stored])
            moved: dict[WithdrawalStatus, list[Withdrawal]] = {}
            for sent, result in zip(stored, results, strict=True):
                withdrawal = withdrawals[sent.withdrawal_id]
                attempt = attempts[sent.tx_hash]
                status = self._record_send(session, withdrawal, attempt, result, report)
                if status is not None:
                    moved.setdefault(status, []).append(withdrawal)
            for status, changed in moved.items():
                transition_many(session, self._catalogue, changed, status)

        run_transaction(self._sessions, record)

    def _record_send(
        self,
        session: Session,
        withdrawal: Withdrawal,
        attempt: WithdrawalAttempt,
        result: SendResult,
        report: BroadcastReport,
    ) -> WithdrawalStatus | None:
        """Record the node's answer to an attempt; the withdrawal's new status, if it moves."""
        attempt.send_outcome = result.outcome.value
        status = WithdrawalStatus(withdrawal.status)
        if status not in (*_UNCONFIRMED_SEND, WithdrawalStatus.BROADCAST):
            return None  # the watcher settled it meanwhile
        outcome = result.outcome
        if outcome is SendOutcome.NONCE_TOO_LOW:
            # This or another attempt of the nonce was mined: the watcher will confirm it.
            # If none was, a transaction we did not sign for this withdrawal took the nonce.
            outcome = SendOutcome.ACCEPTED if self._any_mined(session, withdrawal) else outcome
        if outcome in (SendOutcome.ACCEPTED, SendOutcome.ALREADY_KNOWN):
            attempt.sent_at = datetime.now(UTC)
            if status != WithdrawalStatus.BROADCAST:
                withdrawal.failure_reason = None
                report.sent.append(withdrawal.id)
                return WithdrawalStatus.BROADCAST
        elif outcome in (SendOutcome.TRANSIENT, SendOutcome.NONCE_TOO_LOW, SendOutcome.REJECTED):
            if status == WithdrawalStatus.SIGNED:
                log = logger.warning if outcome is SendOutcome.TRANSIENT else logger.critical
                log(
                    "%s: withdrawal %s, tx %s (nonce %s) is unknown: %s (%s); its funds stay "
                    "held until the chain tells",
                    self._chain,
                    withdrawal.id,
                    attempt.tx_hash,
                    withdrawal.nonce,
                    outcome.value,
                    result.message,
                )
                withdrawal.failure_reason = f"{outcome.value}: {result.message}"[:500]
                report.unknown.append(withdrawal.id)
                return WithdrawalStatus.UNKNOWN
        else:  # underpriced (bumped by the next run) or short of funds (sent again later)
            logger.warning(
                "%s: withdrawal %s, tx %s: %s (%s)",
                self._chain,
                withdrawal.id,
                attempt.tx_hash,
                outcome.value,
                result.message,
            )
        return None

    def _any_mined(self, session: Session, withdrawal: Withdrawal) -> bool:
        hashes = [a.tx_hash for a in attempts_of(session, withdrawal.id)]
        statuses = transaction_statuses(self._hot.rpc, hashes)
        return any(s.state is TransactionState.MINED for s in statuses)

    def _track_sent(self, report: BroadcastReport) -> None:
        """Re-send what the node forgot; bump what waits too long or was underpriced. The
        node is asked about every attempt of every unmined withdrawal in one batch."""
        unmined = run_transaction(
            self._sessions, lambda s: unmined_attempts(s, self._chain, self._hot.address)
        )
        hashes = [a.tx_hash for attempts in unmined.values() for a in attempts]
        states = {s.tx_hash: s.state for s in transaction_statuses(self._hot.rpc, hashes)}
        now = datetime.now(UTC)
        for withdrawal_id, attempts in unmined.items():
            latest = attempts[-1]
            known = {states[a.tx_hash] for a in attempts}
            if latest.status == WithdrawalStatus.SIGNED:
                stuck = latest.send_outcome in UNDERPRICED_SENDS
            elif TransactionState.MINED in known:
                continue  # the watcher records it
            elif known == {TransactionState.NOT_FOUND}:
                self._send([_Stored.of(latest)], report)  # dropped, or removed by a reorg
                continue
            else:
                stuck = now - (latest.sent_at or latest.signed_at) > self._options.bump_after
            if stuck:
                replacement = run_transaction(
                    self._sessions, partial(self._bump, withdrawal_id=withdrawal_id)
                )
                if replacement is not None:
                    report.bumped.append(withdrawal_id)
                    self._send([replacement], report)

    def _bump(self, session: Session, withdrawal_id: str) -> _Stored | None:
        """Sign a replacement of the latest attempt: same nonce, fees raised (capped)."""
        withdrawal = locked_withdrawal(
            session, withdrawal_id, (WithdrawalStatus.BROADCAST, WithdrawalStatus.SIGNED)
        )
        if withdrawal is None or withdrawal.block_number is not None:
            return None
        assert withdrawal.nonce is not None
        latest = attempts_of(session, withdrawal_id)[-1]
        previous = FeeQuote(latest.max_fee_per_gas, latest.max_priority_fee_per_gas)
        market = quote_fees(self._hot.rpc, self._options.fee_policy)
        fees = replacement_fees(
            previous,
            market if isinstance(market, FeeQuote) else None,
            self._options.fee_policy.max_fee_per_gas_cap,
        )
        if isinstance(fees, FeeCapReached):
            logger.warning(
                "%s: withdrawal %s is stuck at nonce %d but a fee bump would pass the cap",
                self._chain,
                withdrawal_id,
                withdrawal.nonce,
            )
            return None
        asset = self._catalogue.asset(withdrawal.asset)
        request = self._transaction(withdrawal, asset, withdrawal.nonce, fees)
        withdrawal.updated_at = datetime.now(UTC)
        return self._store(session, withdrawal, request, self._hot.signer.sign(request))


@dataclass(frozen=True)
class BroadcastContext:
    """What the broadcast task of one worker process works with."""

    engine: Engine
    sessions: sessionmaker[Session]
    catalogue: Catalogue
    hot_wallets: Sequence[HotWallet]
    options: BroadcastOptions


def hot_wallet_signers(settings: Settings, catalogue: Catalogue) -> dict[str, KeySigner]:
    """The hot wallet signer of each chain with a native asset, by chain name, from the
    master seed (m/44'/60'/{chain_id}'/1/0); none without a seed."""
    seed = load_master_seed(settings)
    if seed is None:
        return {}
    chains = {asset.chain for asset in catalogue.assets.values() if asset.kind is AssetKind.NATIVE}
    return {
        chain.name: KeySigner.hot_wallet(seed, account=bip44_account(chain))
        for chain in catalogue.chains.values()
        if chain.name in chains
    }


def hot_wallets(settings: Settings, catalogue: Catalogue) -> list[HotWallet]:
    """Each chain's hot wallet with a client of its node, to send from."""
    signers = hot_wallet_signers(settings, catalogue)
    if not signers:
        logger.warning("no seed configured: withdrawals are not sent")
    return [
        HotWallet(catalogue.chain(name), signer, RpcClient(catalogue.chain(name).rpc_url))
        for name, signer in signers.items()
    ]


def register_tasks(app: Celery, context: Callable[[], BroadcastContext]) -> None:
    """Define the broadcast task on `app`; `context` gives the calling process's context."""

    def broadcast_task() -> None:
        current = context()
        for hot in current.hot_wallets:
            broadcaster = WithdrawalBroadcaster(
                current.engine, current.sessions, current.catalogue, hot, current.options
            )
            try:
                report = broadcaster.run()
            except RpcError as error:
                logger.warning("%s: node error while broadcasting: %s", hot.chain.name, error)
                continue
            if report:
                logger.info(
                    "%s: %d signed, %d sent, %d waiting for liquidity, %d unknown, %d bumped",
                    hot.chain.name,
                    len(report.signed),
                    len(report.sent),
                    len(report.waiting),
                    len(report.unknown),
                    len(report.bumped),
                )

    app.task(name=BROADCAST_WITHDRAWALS, ignore_result=True, shared=False)(broadcast_task)
