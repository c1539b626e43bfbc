"""The sweeper: empties deposit addresses into the hot wallet and sends the hot wallet's
excess to the cold address, each transaction written ahead.

A run of one chain, under the hot wallet's signing lock (the advisory lock the withdrawal
broadcaster takes, so the two never sign for the hot wallet at once):

1. open jobs: a transaction the node does not know is sent again from its stored bytes; one
   whose receipt is final (the chain's confirmations) is recorded with its fee
   (`wallet.sweeps.service.record_final`); a token job whose gas top-up became final signs
   its transfer now, never before;
2. deposit addresses without an open job, holding at least an asset's threshold: a token is
   swept after a top-up of the gas its transfer needs at today's fees (or at once, if the
   address already holds it); the native asset is swept less the transfer's gas;
3. the hot wallet's holdings above an asset's ceiling go to the chain's cold address.

Each transaction is signed and stored in the transaction that records its job's state, and
sent after that commit: the hot wallet's nonce comes from its nonce row
(`lock_hot_wallet_nonce`, shared with withdrawals), a deposit address's from the chain (it
sends one transaction at a time, and a stored one is only ever sent again).
"""

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Final

from celery import Celery
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from chains import (
    ETH_TRANSFER_GAS,
    UNDERPRICED_SENDS,
    FeeCapReached,
    FeeQuote,
    Receipt,
    RpcClient,
    RpcError,
    TransactionRequest,
    TransactionState,
    TransactionStatus,
    account_nonces,
    native_balance,
    quote_fees,
    replacement_fees,
    send_raw_transaction,
    token_balance,
    transaction_statuses,
)
from custody import DepositKeyTree, KeySigner, Signer
from wallet.assets.service import Asset, AssetKind, Catalogue, Chain
from wallet.database import run_transaction
from wallet.deposits.addresses import bip44_account, load_master_seed
from wallet.settings import Settings
from wallet.sweeps.models import Sweep, SweepKind, SweepPhase, SweepStatus, SweepTransaction
from wallet.sweeps.repository import (
    IndexedAddress,
    attempts,
    deposit_addresses,
    derivation_index,
    locked_sweep,
    open_sweeps,
)
from wallet.sweeps.service import SweepRules, move, record_final, start_sweep, store_transaction
from wallet.withdrawals.liquidity import HotWalletLiquidity, hot_wallet_liquidity
from wallet.withdrawals.service import (
    advance_hot_wallet_nonce,
    gas_limit,
    lock_hot_wallet_nonce,
    native_asset,
    transfer_request,
)

logger = logging.getLogger(__name__)

SWEEP: Final = "wallet.sweeps.sweep"


@dataclass(frozen=True)
class CustodyChain:
    """A chain's hot wallet signer, the keys of its deposit addresses, and its node."""

    chain: Chain
    hot: Signer
    deposit_keys: DepositKeyTree
    rpc: RpcClient

    @property
    def hot_address(self) -> str:
        return self.hot.address.lower()


@dataclass
class SweepReport:
    """What one run did, by job id."""

    started: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cold: list[str] = field(default_factory=list)
    bumped: list[str] = field(default_factory=list)
    refuelled: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    """Deposit addresses not swept yet: the hot wallet cannot pay their gas."""

    def __bool__(self) -> bool:
        return any(vars(self).values())

    def __str__(self) -> str:
        return (
            f"{len(self.started)} sweeps started, {len(self.confirmed)} confirmed, "
            f"{len(self.failed)} failed, {len(self.cold)} cold transfers, {len(self.bumped)} "
            f"bumped, {len(self.refuelled)} refuelled for a bump, {len(self.waiting)} waiting "
            "for the hot wallet"
        )


@dataclass(frozen=True)
class _Stored:
    tx_hash: str
    phase: SweepPhase
    raw_transaction: bytes
    signed_at: datetime
    send_outcome: str | None

    @classmethod
    def of(cls, stored: SweepTransaction) -> "_Stored":
        return cls(
            stored.tx_hash,
            SweepPhase(stored.phase),
            stored.raw_transaction,
            stored.signed_at,
            stored.send_outcome,
        )


class Sweeper:
    """Sweeps one chain's deposit addresses and keeps its hot wallet under the ceilings."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        catalogue: Catalogue,
        custody: CustodyChain,
        rules: SweepRules,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._catalogue = catalogue
        self._custody = custody
        self._rules = rules
        self._chain = custody.chain
        self._rpc = custody.rpc

    def run(self) -> SweepReport:
        report = SweepReport()
        with self._engine.connect() as lock:
            # The broadcaster's key: one signer of the hot wallet at a time (it skips a run
            # while this one holds it; this one waits for its run to end).
            key = {"key": f"withdrawals:{self._chain.name}"}
            lock.execute(text("SELECT pg_advisory_lock(hashtext(:key))"), key)
            try:
                liquidity = run_transaction(self._sessions, self._liquidity)
                self._follow_up(report, liquidity)
                fees = self._fees()
                if fees is not None:
                    self._start_sweeps(fees, report, liquidity)
                    self._send_cold(fees, report, liquidity)
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), key)
        return report

    def _liquidity(self, session: Session) -> HotWalletLiquidity:
        return hot_wallet_liquidity(
            session, self._catalogue, self._chain.name, self._custody.hot_address, self._rpc
        )

    def _fees(self) -> FeeQuote | None:
        quote = quote_fees(self._rpc, self._rules.fee_policy)
        if isinstance(quote, FeeCapReached):
            logger.warning("%s: network fees above the cap: no new sweeps", self._chain.name)
            return None
        return quote

    def _follow_up(self, report: SweepReport, liquidity: HotWalletLiquidity) -> None:
        jobs = run_transaction(self._sessions, lambda s: _open(s, self._chain.name))
        if not jobs:
            return
        head = int(self._rpc.call("eth_blockNumber"), 16)
        hashes = [attempt.tx_hash for job in jobs for attempt in job.attempts]
        states = {status.tx_hash: status for status in _statuses(self._rpc, hashes)}
        for job in jobs:
            if job.status == SweepStatus.GAS_CONFIRMED:
                self._sign_transfer(job.sweep_id)
                continue
            known = [states[attempt.tx_hash] for attempt in job.attempts]
            receipt = next((s.receipt for s in known if s.receipt is not None), None)
            if receipt is None:
                self._track_unmined(job, {s.state for s in known}, report, liquidity)
                continue
            if head - receipt.block_number + 1 < self._chain.confirmations:
                continue
            final = run_transaction(
                self._sessions, partial(self._record_final, sweep_id=job.sweep_id, receipt=receipt)
            )
            if final is SweepStatus.FAILED:
                logger.error("%s: sweep %s failed: status 0", self._chain.name, job.sweep_id)
                report.failed.append(job.sweep_id)
            elif final is SweepStatus.GAS_CONFIRMED:
                self._sign_transfer(job.sweep_id)
            elif final is SweepStatus.SWEEP_CONFIRMED:
                report.confirmed.append(job.sweep_id)

    def _track_unmined(
        self,
        job: "_Open",
        states: set[TransactionState],
        report: SweepReport,
        liquidity: HotWalletLiquidity,
    ) -> None:
        """Bump what waits too long or was underpriced; re-send what the node forgot. A hot
        wallet's transaction stuck here would hold back every withdrawal after its nonce."""
        latest = job.attempts[-1]
        waited = datetime.now(UTC) - latest.signed_at
        if latest.send_outcome in UNDERPRICED_SENDS or (
            states != {TransactionState.NOT_FOUND} and waited > self._rules.bump_after
        ):
            bump = partial(
                self._bump, sweep_id=job.sweep_id, status=job.status, liquidity=liquidity
            )
            replacement = run_transaction(self._sessions, bump)
            if replacement is not None:
                refuel = replacement.phase != _phase(job.status)
                (report.refuelled if refuel else report.bumped).append(job.sweep_id)
                self._send(replacement)
        elif states == {TransactionState.NOT_FOUND}:
            self._send(latest)  # never reached the node, dropped, or reorged out

    def _bump(
        self,
        session: Session,
        sweep_id: str,
        status: SweepStatus,
        liquidity: HotWalletLiquidity,
    ) -> "_Stored | None":
        """Sign a replacement of the phase's latest transaction: the same nonce, fees raised
        (capped). A native sweep sends that much less. A token sweep's address must hold the
        gas the higher fee needs: if it does not, the hot wallet sends it what is missing
        first (`_refuel`), and a later run bumps the transfer once that is final."""
        sweep = locked_sweep(session, sweep_id, status)
        if sweep is None:
            return None
        phase = _phase(status)
        latest = attempts(session, sweep_id, phase)[-1]
        previous = TransactionRequest.of_signed(latest.raw_transaction)
        market = quote_fees(self._rpc, self._rules.fee_policy)
        fees = replacement_fees(
            previous.fees,
            market if isinstance(market, FeeQuote) else None,
            self._rules.fee_policy.max_fee_per_gas_cap,
        )
        if isinstance(fees, FeeCapReached):
            logger.warning(
                "%s: sweep %s is stuck at nonce %d but a fee bump would pass the cap",
                self._chain.name,
                sweep_id,
                previous.nonce,
            )
            return None
        signer: Signer = self._custody.hot
        replacement = previous.with_fees(fees)
        if latest.sender != self._custody.hot_address:
            signer = self._deposit_signer(derivation_index(session, sweep.chain, sweep.source))
            if previous.data:
                shortfall = replacement.max_cost() - native_balance(self._rpc, sweep.source)
                if shortfall > 0:
                    return self._refuel(
                        session, sweep, previous.nonce, shortfall, fees, liquidity=liquidity
                    )
            else:
                value = previous.max_cost() - fees.max_cost(previous.gas)
                if value <= 0:
                    logger.warning(
                        "%s: sweep %s is stuck at nonce %d and %s cannot pay a fee bump",
                        self._chain.name,
                        sweep_id,
                        previous.nonce,
                        sweep.source,
                    )
                    return None
                replacement = dataclasses.replace(replacement, value=value)
        else:
            native = native_asset(self._catalogue, sweep.chain)
            if not liquidity.take(native, 0, replacement.max_cost() - previous.max_cost()):
                self._hot_wallet_short(f"a fee bump of sweep {sweep_id}")
                return None
        move(sweep, status)
        return self._store(session, sweep, phase, replacement, signer)

    def _refuel(
        self,
        session: Session,
        sweep: Sweep,
        nonce: int,
        shortfall: int,
        fees: FeeQuote,
        *,
        liquidity: HotWalletLiquidity,
    ) -> _Stored | None:
        """The gas a stuck token transfer's address lacks for its fee bump, from the hot
        wallet (a transaction of the gas phase again): the job waits for it to be final."""
        native = native_asset(self._catalogue, sweep.chain)
        request = self._from_hot(
            session, native, sweep.source, shortfall, fees, liquidity=liquidity
        )
        if request is None:
            self._hot_wallet_short(f"the gas for a fee bump of sweep {sweep.id}")
            return None
        logger.warning(
            "%s: sweep %s is stuck at nonce %d and %s lacks %d wei of gas for a fee bump: "
            "sent from the hot wallet first",
            self._chain.name,
            sweep.id,
            nonce,
            sweep.source,
            shortfall,
        )
        move(sweep, SweepStatus.REFUEL_REQUESTED)
        return self._store(session, sweep, SweepPhase.GAS, request, self._custody.hot)

    def _record_final(self, session: Session, sweep_id: str, receipt: Receipt) -> SweepStatus:
        return record_final(session, self._catalogue, session.get_one(Sweep, sweep_id), receipt)

    def _start_sweeps(
        self, fees: FeeQuote, report: SweepReport, liquidity: HotWalletLiquidity
    ) -> None:
        def addresses(session: Session) -> list[IndexedAddress]:
            busy = {job.source for job in open_sweeps(session, self._chain.name)}
            found = deposit_addresses(session, self._chain.name)
            return [a for a in found if a.address not in busy]

        native = native_asset(self._catalogue, self._chain.name)
        tokens = [
            a
            for a in self._catalogue.assets_on(self._chain.name)
            if a.kind is AssetKind.ERC20 and a.code in self._rules.thresholds
        ]
        if not tokens and native.code not in self._rules.thresholds:
            return
        for deposit in run_transaction(self._sessions, addresses):
            held = native_balance(self._rpc, deposit.address)
            token = next(
                (
                    (t, amount)
                    for t in tokens
                    if (amount := self._token_balance(t, deposit.address))
                    >= self._rules.thresholds[t.code]
                ),
                None,
            )
            if token is not None:
                self._start_token_sweep(
                    deposit,
                    token[0],
                    token[1],
                    held=held,
                    fees=fees,
                    report=report,
                    liquidity=liquidity,
                )
            elif (
                native.code in self._rules.thresholds
                and held >= self._rules.thresholds[native.code]
            ):
                amount = held - fees.max_cost(ETH_TRANSFER_GAS)
                if amount > 0:
                    self._start_native_sweep(deposit, native, amount, fees, report)

    def _token_balance(self, asset: Asset, holder: str) -> int:
        assert asset.contract_address is not None
        return token_balance(self._rpc, asset.contract_address, holder)

    def _start_token_sweep(
        self,
        deposit: IndexedAddress,
        asset: Asset,
        amount: int,
        *,
        held: int,
        fees: FeeQuote,
        report: SweepReport,
        liquidity: HotWalletLiquidity,
    ) -> None:
        """Phase one: the gas the transfer needs at its fee cap, from the hot wallet; while
        the hot wallet cannot pay it, the address waits, and no nonce is taken."""
        needed = fees.max_cost(gas_limit(asset)) - held

        def start(session: Session) -> tuple[str, _Stored | None] | None:
            if needed <= 0:
                sweep = self._to_hot(session, deposit, asset, amount, SweepStatus.GAS_CONFIRMED)
                return sweep.id, None
            native = native_asset(self._catalogue, asset.chain or "")
            request = self._from_hot(
                session, native, deposit.address, needed, fees, liquidity=liquidity
            )
            if request is None:
                return None
            sweep = self._to_hot(session, deposit, asset, amount, SweepStatus.GAS_REQUESTED)
            return sweep.id, self._store(session, sweep, SweepPhase.GAS, request, self._custody.hot)

        started = run_transaction(self._sessions, start)
        if started is None:
            self._hot_wallet_short(f"the gas to sweep {deposit.address}")
            report.waiting.append(deposit.address)
            return
        sweep_id, top_up = started
        report.started.append(sweep_id)
        if top_up is None:
            self._sign_transfer(sweep_id)
        else:
            self._send(top_up)

    def _start_native_sweep(
        self,
        deposit: IndexedAddress,
        asset: Asset,
        amount: int,
        fees: FeeQuote,
        report: SweepReport,
    ) -> None:
        signer = self._deposit_signer(deposit.derivation_index)
        nonce = account_nonces(self._rpc, deposit.address).pending

        def start(session: Session) -> tuple[str, _Stored]:
            sweep = self._to_hot(session, deposit, asset, amount, SweepStatus.SWEEP_SENT)
            request = self._transfer(asset, nonce, self._custody.hot_address, amount, fees)
            return sweep.id, self._store(session, sweep, SweepPhase.TRANSFER, request, signer)

        sweep_id, stored = run_transaction(self._sessions, start)
        report.started.append(sweep_id)
        self._send(stored)

    def _to_hot(
        self,
        session: Session,
        deposit: IndexedAddress,
        asset: Asset,
        amount: int,
        status: SweepStatus,
    ) -> Sweep:
        return start_sweep(
            session,
            kind=SweepKind.SWEEP,
            asset=asset,
            source=deposit.address,
            destination=self._custody.hot_address,
            amount=amount,
            status=status,
        )

    def _sign_transfer(self, sweep_id: str) -> None:
        """Phase two of a token sweep, only once its gas is confirmed."""
        fees = self._fees()
        if fees is None:
            return

        def sign(session: Session) -> _Stored | None:
            sweep = locked_sweep(session, sweep_id, SweepStatus.GAS_CONFIRMED)
            if sweep is None:
                return None
            index = derivation_index(session, sweep.chain, sweep.source)
            nonce = account_nonces(self._rpc, sweep.source).pending
            asset = self._catalogue.asset(sweep.asset)
            request = self._transfer(
                asset, nonce, sweep.destination, sweep.amount, self._affordable(sweep, fees)
            )
            stored = self._store(
                session, sweep, SweepPhase.TRANSFER, request, self._deposit_signer(index)
            )
            move(sweep, SweepStatus.SWEEP_SENT)
            return stored

        stored = run_transaction(self._sessions, sign)
        if stored is not None:
            self._send(stored)

    def _affordable(self, sweep: Sweep, fees: FeeQuote) -> FeeQuote:
        """`fees`, or lower if fees rose since the top-up: what the address's gas pays for
        (a transaction it cannot pay would wait in no pool, re-sent for ever)."""
        gas = gas_limit(self._catalogue.asset(sweep.asset))
        held = native_balance(self._rpc, sweep.source)
        if fees.max_cost(gas) <= held:
            return fees
        cap = held // gas
        return FeeQuote(cap, min(fees.max_priority_fee_per_gas, cap))

    def _send_cold(
        self, fees: FeeQuote, report: SweepReport, liquidity: HotWalletLiquidity
    ) -> None:
        """Above an asset's ceiling, what the hot wallet holds and has not committed to
        transactions in flight goes to the cold address."""
        cold = self._rules.cold_addresses.get(self._chain.name)
        if cold is None:
            return
        hot = self._custody.hot_address
        busy = run_transaction(
            self._sessions,
            lambda s: {
                j.asset for j in open_sweeps(s, self._chain.name) if j.kind == SweepKind.COLD
            },
        )
        for asset in self._catalogue.assets_on(self._chain.name):
            ceiling = self._rules.ceilings.get(asset.code)
            if ceiling is None or asset.code in busy:
                continue
            if asset.kind is AssetKind.NATIVE:
                excess = liquidity.native - ceiling - fees.max_cost(ETH_TRANSFER_GAS)
            else:
                excess = liquidity.tokens(asset) - ceiling
            if excess <= 0:
                continue

            def start(
                session: Session, asset: Asset = asset, excess: int = excess
            ) -> tuple[str, _Stored] | None:
                request = self._from_hot(session, asset, cold, excess, fees, liquidity=liquidity)
                if request is None:
                    return None
                sweep = start_sweep(
                    session,
                    kind=SweepKind.COLD,
                    asset=asset,
                    source=hot,
                    destination=cold,
                    amount=excess,
                    status=SweepStatus.SWEEP_SENT,
                )
                return sweep.id, self._store(
                    session, sweep, SweepPhase.TRANSFER, request, self._custody.hot
                )

            started = run_transaction(self._sessions, start)
            if started is None:
                self._hot_wallet_short(f"the gas to send {asset.code} cold")
                continue
            sweep_id, stored = started
            report.cold.append(sweep_id)
            self._send(stored)

    def _from_hot(
        self,
        session: Session,
        asset: Asset,
        to: str,
        amount: int,
        fees: FeeQuote,
        *,
        liquidity: HotWalletLiquidity,
    ) -> TransactionRequest | None:
        """A transfer from the hot wallet at its next nonce, taken in the caller's transaction
        (which stores the signed transaction); None, with no nonce taken, if the hot wallet
        cannot pay it on top of what it has in flight."""
        chain, hot = self._chain.name, self._custody.hot_address
        nonce = lock_hot_wallet_nonce(session, chain, hot, self._rpc)
        request = self._transfer(asset, nonce, to, amount, fees)
        if not liquidity.take(asset, amount, request.max_cost()):
            return None
        advance_hot_wallet_nonce(session, chain, hot, nonce)
        return request

    def _hot_wallet_short(self, what: str) -> None:
        logger.warning(
            "%s: the hot wallet %s cannot pay %s on top of its transactions in flight: it waits",
            self._chain.name,
            self._custody.hot_address,
            what,
        )

    def _transfer(
        self, asset: Asset, nonce: int, to: str, amount: int, fees: FeeQuote
    ) -> TransactionRequest:
        return transfer_request(self._chain, asset, nonce=nonce, to=to, amount=amount, fees=fees)

    def _store(
        self,
        session: Session,
        sweep: Sweep,
        phase: SweepPhase,
        request: TransactionRequest,
        signer: Signer,
    ) -> _Stored:
        return _Stored.of(store_transaction(session, sweep, phase, request, signer.sign(request)))

    def _deposit_signer(self, index: int) -> KeySigner:
        return KeySigner(self._custody.deposit_keys.private_key(index))

    def _send(self, stored: _Stored) -> None:
        """Send the stored bytes and record the node's answer. Whatever it is, the next run
        asks the node again: unknown to it, the same bytes go out again."""
        result = send_raw_transaction(self._rpc, stored.raw_transaction)

        def record(session: Session) -> None:
            session.get_one(SweepTransaction, stored.tx_hash).send_outcome = result.outcome.value

        run_transaction(self._sessions, record)


@dataclass(frozen=True)
class _Open:
    sweep_id: str
    status: SweepStatus
    attempts: list[_Stored]
    """The transactions of its current phase, the latest last (none when gas_confirmed)."""


def _open(session: Session, chain: str) -> list[_Open]:
    jobs = []
    for sweep in open_sweeps(session, chain):
        status = SweepStatus(sweep.status)
        found = (
            []
            if status == SweepStatus.GAS_CONFIRMED
            else [
                _Stored.of(a)
                for a in attempts(session, sweep.id, _phase(status))
                if a.block_number is None  # a refuel's gas phase follows a final top-up
            ]
        )
        jobs.append(_Open(sweep.id, status, found))
    return jobs


def _phase(status: SweepStatus) -> SweepPhase:
    """The phase whose transactions an open job in `status` waits for."""
    gas = (SweepStatus.GAS_REQUESTED, SweepStatus.REFUEL_REQUESTED)
    return SweepPhase.GAS if status in gas else SweepPhase.TRANSFER


def _statuses(rpc: RpcClient, hashes: Sequence[str]) -> list[TransactionStatus]:
    return transaction_statuses(rpc, hashes) if hashes else []


def custody_chains(settings: Settings, catalogue: Catalogue) -> list[CustodyChain]:
    """Each chain with a native asset: its hot wallet, deposit keys and node; none without
    a seed."""
    seed = load_master_seed(settings)
    if seed is None:
        logger.warning("no seed configured: nothing is swept")
        return []
    chains = {a.chain for a in catalogue.assets.values() if a.kind is AssetKind.NATIVE}
    found = []
    for chain in catalogue.chains.values():
        if chain.name in chains:
            account = bip44_account(chain)
            found.append(
                CustodyChain(
                    chain,
                    KeySigner.hot_wallet(seed, account=account),
                    DepositKeyTree(seed, account=account),
                    RpcClient(chain.rpc_url),
                )
            )
    return found


@dataclass(frozen=True)
class SweepContext:
    """What the sweep task of one worker process works with."""

    engine: Engine
    sessions: sessionmaker[Session]
    catalogue: Catalogue
    chains: Sequence[CustodyChain]
    rules: SweepRules


def sweep_chains(context: SweepContext, only: str | None = None) -> dict[str, SweepReport]:
    """One run per chain (or only the chain named); a chain whose node fails is skipped."""
    reports = {}
    for custody in context.chains:
        if only is not None and custody.chain.name != only:
            continue
        sweeper = Sweeper(
            context.engine, context.sessions, context.catalogue, custody, context.rules
        )
        try:
            reports[custody.chain.name] = sweeper.run()
        except RpcError as error:
            logger.warning("%s: node error while sweeping: %s", custody.chain.name, error)
    return reports


def register_tasks(app: Celery, context: Callable[[], SweepContext]) -> None:
    def sweep_task() -> None:
        for chain, report in sweep_chains(context()).items():
            if report:
                logger.info("%s: %s", chain, report)

    app.task(name=SWEEP, ignore_result=True, shared=False)(sweep_task)
