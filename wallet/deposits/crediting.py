"""Crediting and reversal: confirmations counted, deposits credited once, reorgs undone.

A `seen` deposit whose confirmations (tip - block + 1) reach the chain's requirement while
its block is still in the stored header window is `credited`: posted once with the external
reference ('deposit', chain:tx:log_index), unique in the ledger. Until then it is held from
`chain:<chain>` to the wallet (pending in, not spendable). A block rolled back before the
credit leaves the deposit `orphaned` (hold voided); after it, `reversed` by a compensating
ledger transaction, with a `deposit.reversed` alert. A deposit confirmed while its wallet is
frozen is `held` instead, its hold kept, and credited when the wallet is unfrozen.
"""

import itertools
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from chains import BlockHeader
from wallet.assets.service import Asset, Catalogue, Chain
from wallet.deposits import repository
from wallet.deposits.arrivals import ChainAssets, DepositChanges
from wallet.deposits.models import Deposit, DepositStatus
from wallet.deposits.schemas import DepositOut
from wallet.events.service import Event
from wallet.ledger import service as ledger
from wallet.ledger.errors import InsufficientFunds
from wallet.ledger.service import (
    ExternalReference,
    Posting,
    Reason,
    TransactionRequest,
    balance,
    lock_accounts,
    system_account,
    user_accounts,
)
from wallet.wallets.models import WalletStatus
from wallet.wallets.service import share_lock_statuses

logger = logging.getLogger(__name__)

EXTERNAL_KIND = "deposit"


def confirm(
    session: Session,
    assets: ChainAssets,
    tip: BlockHeader,
    arrived: Sequence[Deposit],
    changes: DepositChanges,
) -> list[Deposit]:
    """Count confirmations of `seen` deposits in canonical blocks, those in stored blocks and
    those `arrived` in this step's blocks; credit the confirmed ones (returned), put the others
    on hold (pending in) if they are not yet. A confirmed deposit to a wallet that is not
    active is `held` (pending in) until the wallet is unfrozen (`credit_held`)."""
    chain = assets.name
    stored = session.scalars(repository.WAITING_DEPOSITS, {"chain": chain}).all()
    pending = sorted([*stored, *arrived], key=lambda d: (d.block_number, d.id))
    if not pending:
        return []
    required = assets.chain.confirmations
    confirmed: list[Deposit] = []
    waiting: list[Deposit] = []
    for deposit in pending:
        deposit.confirmations = tip.number - deposit.block_number + 1
        (confirmed if deposit.confirmations >= required else waiting).append(deposit)
    unheld = [d for d in waiting if d.hold_id is None]
    if not confirmed and not unheld:
        session.flush()
        return []
    inactive = _inactive_wallets(session, {d.wallet_id for d in confirmed})
    for deposit in confirmed:
        if deposit.wallet_id in inactive:
            deposit.status = DepositStatus.HELD
            deposit.updated_at = datetime.now(UTC)
            changes.held.append(deposit.id)
            if deposit.hold_id is None:
                unheld.append(deposit)
    confirmed = [d for d in confirmed if d.wallet_id not in inactive]
    accounts = ChainAccounts(session, chain)
    accounts.lock([*confirmed, *unheld])
    if confirmed:
        credit(session, accounts, assets, confirmed)
        for deposit in confirmed:
            changes.credited.append(deposit.id)
    for deposit in unheld:
        hold = ledger.place_hold(
            session,
            accounts.chain(deposit.asset),
            accounts.wallet(deposit.wallet_id, deposit.asset),
            deposit.amount,
            Reason.DEPOSIT,
            metadata={"deposit_id": deposit.id},
        )
        deposit.hold_id = hold.id
    session.flush()
    return confirmed


def _inactive_wallets(session: Session, wallet_ids: set[str]) -> set[str]:
    """Which of the wallets are frozen or closed.

    The wallets are share-locked in id order before any account, as transfers do: a freeze
    that has answered is seen here, and a freeze that comes later waits for this transaction,
    so no commit after a freeze credits the wallet.
    """
    if not wallet_ids:
        return set()
    statuses = share_lock_statuses(session, wallet_ids)
    return {wallet for wallet, status in statuses.items() if status != WalletStatus.ACTIVE}


def credit_held(session: Session, catalogue: Catalogue, wallet_id: str) -> list[Event]:
    """Credit the deposits held while the wallet was not active; their `deposit.credited`
    events. The caller has just made the wallet active, its row locked to the end of the
    transaction, so no watcher step holds a deposit of it meanwhile."""
    held = session.scalars(repository.HELD_DEPOSITS_OF_WALLET, {"wallet": wallet_id}).all()
    events = []
    for chain, group in itertools.groupby(held, key=lambda d: d.chain):
        deposits = list(group)
        assets = ChainAssets.of(catalogue, chain)
        accounts = ChainAccounts(session, chain)
        accounts.lock(deposits)
        credit(session, accounts, assets, deposits)
        events += [
            deposit_event("deposit.credited", d, assets.by_code[d.asset], assets.chain)
            for d in deposits
        ]
    session.flush()
    return events


def credit(
    session: Session, accounts: "ChainAccounts", assets: ChainAssets, deposits: Sequence[Deposit]
) -> None:
    """Post each deposit from the chain's account to its wallet, all in one ledger call.

    A hold, if any, is voided first and the credit is posted as its own transaction: a hold's
    posting carries no external reference, and the reference is what makes a second credit
    of the same deposit impossible in the database.
    """
    requests = []
    for deposit in deposits:
        if deposit.hold_id is not None:
            ledger.void_hold(session, deposit.hold_id)
        requests.append(
            TransactionRequest(
                reason=Reason.DEPOSIT,
                postings=[
                    Posting(accounts.chain(deposit.asset), -deposit.amount),
                    Posting(accounts.wallet(deposit.wallet_id, deposit.asset), deposit.amount),
                ],
                metadata={"deposit_id": deposit.id, "chain": deposit.chain},
                external=ExternalReference(EXTERNAL_KIND, credit_reference(deposit)),
            )
        )
    results = ledger.apply(session, requests, atomic=True)
    for deposit, result in zip(deposits, results, strict=True):
        if result.error is not None:
            raise result.error
        deposit.status = DepositStatus.CREDITED
        deposit.credit_transaction_id = result.transaction_id
        deposit.credited_at = deposit.updated_at = datetime.now(UTC)
    logger.info("%s: credited %d deposit(s)", assets.name, len(deposits))


def credit_reference(deposit: Deposit) -> str:
    """The ledger's external reference of the deposit's credit: chain:tx_hash:log_index.

    A credit reversed after a deep reorg may be credited again when the transfer is re-mined;
    that credit's reference carries the number of reversals before it.
    """
    base = f"{deposit.chain}:{deposit.tx_hash}:{deposit.log_index}"
    return base if deposit.reversal_count == 0 else f"{base}:{deposit.reversal_count}"


def reverse_credit(
    session: Session, accounts: "ChainAccounts", assets: ChainAssets, deposit: Deposit, asset: Asset
) -> None:
    """Undo a credit whose block left the chain. What the wallet can no longer cover (it was
    spent) is booked to `reorg-shortfall:<chain>` so the reversal always happens."""
    assert deposit.credit_transaction_id is not None
    metadata = {"deposit_id": deposit.id, "reorg": True}
    try:
        reversal = ledger.reverse(session, deposit.credit_transaction_id, metadata)
        shortfall = 0
    except InsufficientFunds:
        wallet_account = accounts.wallet(deposit.wallet_id, deposit.asset)
        available = max(0, balance(session, wallet_account).available)
        taken = min(deposit.amount, available)
        shortfall = deposit.amount - taken
        lines = [
            Posting(accounts.chain(deposit.asset), deposit.amount),
            Posting(
                system_account(session, f"reorg-shortfall:{assets.name}", deposit.asset), -shortfall
            ),
        ]
        if taken:
            lines.append(Posting(wallet_account, -taken))
        reversal = ledger.post(
            session,
            TransactionRequest(
                reason=Reason.REVERSAL,
                postings=lines,
                metadata=metadata | {"shortfall": str(shortfall)},
                reverses=deposit.credit_transaction_id,
            ),
        )
    deposit.status = DepositStatus.REVERSED
    deposit.reversal_transaction_id = reversal
    deposit.reversal_count += 1
    deposit.updated_at = datetime.now(UTC)
    logger.critical(
        "ALERT %s: credited deposit %s of %s %s to wallet %s left the chain in a reorg deeper "
        "than %d confirmations (block %d, tx %s): credit reversed, shortfall %s",
        assets.name,
        deposit.id,
        asset.format(deposit.amount),
        asset.code,
        deposit.wallet_id,
        assets.chain.confirmations,
        deposit.block_number,
        deposit.tx_hash,
        asset.format(shortfall),
    )


class ChainAccounts:
    """The ledger accounts a step touches, looked up (or created) once per step."""

    def __init__(self, session: Session, chain: str) -> None:
        self._session = session
        self._chain = chain
        self._chain_ids: dict[str, int] = {}
        self._wallet_ids: dict[tuple[str, str], int] = {}

    def chain(self, asset: str) -> int:
        """`chain:<chain>`, the outside world's side of every deposit of `asset`."""
        if asset not in self._chain_ids:
            self._chain_ids[asset] = system_account(self._session, f"chain:{self._chain}", asset)
        return self._chain_ids[asset]

    def wallet(self, wallet_id: str, asset: str) -> int:
        key = (wallet_id, asset)
        if key not in self._wallet_ids:
            self._wallet_ids.update(user_accounts(self._session, [key]))
        return self._wallet_ids[key]

    def lock(self, deposits: Sequence[Deposit]) -> None:
        """Lock every account of `deposits` in id order, before any ledger call of the step.

        Each ledger function locks what it touches in id order, but a step makes many calls;
        taking all the locks first keeps one global order, so a step cannot deadlock with
        transfers on the same wallets. The wallets' accounts are found or created at once.
        """
        keys = {(d.wallet_id, d.asset) for d in deposits} - self._wallet_ids.keys()
        if keys:
            self._wallet_ids.update(user_accounts(self._session, keys))
        ids = set()
        for deposit in deposits:
            ids.add(self.chain(deposit.asset))
            ids.add(self.wallet(deposit.wallet_id, deposit.asset))
        lock_accounts(self._session, ids)


def live_deposits_above(session: Session, chain: str, block: int) -> Sequence[Deposit]:
    """The chain's deposits in blocks above `block` that a rollback would take off the chain
    (neither orphaned nor reversed yet), locked, oldest block first."""
    params = {"chain": chain, "number": block}
    return session.scalars(repository.ON_CHAIN_DEPOSITS_ABOVE, params).all()


def orphan_or_reverse(
    session: Session, assets: ChainAssets, gone: Sequence[Deposit], changes: DepositChanges
) -> list[Event]:
    """Orphan the deposits of `gone` (their blocks left the chain), reverse the credited ones;
    their events. `gone` are live deposits, locked."""
    if not gone:
        return []
    chain = assets.name
    accounts = ChainAccounts(session, chain)
    accounts.lock(gone)
    by_code = assets.by_code
    events = []
    for deposit in gone:
        asset = by_code[deposit.asset]
        if deposit.status == DepositStatus.CREDITED:
            reverse_credit(session, accounts, assets, deposit, asset)
            changes.reversed.append(deposit.id)
            event = "deposit.reversed"
        else:
            if deposit.hold_id is not None and deposit.status in (
                DepositStatus.SEEN,
                DepositStatus.HELD,
            ):
                ledger.void_hold(session, deposit.hold_id)
            deposit.status = DepositStatus.ORPHANED
            changes.orphaned.append(deposit.id)
            event = "deposit.orphaned"
        deposit.confirmations = 0
        deposit.updated_at = datetime.now(UTC)
        events.append(deposit_event(event, deposit, asset, assets.chain))
    session.flush()
    return events


def deposit_event(event_type: str, deposit: Deposit, asset: Asset, chain: Chain) -> Event:
    """A `deposit.*` event: the deposit as the API shows it, with its recorded confirmations."""
    payload = DepositOut.of(deposit, asset, chain, deposit.confirmations)
    return Event(deposit.tenant_id, event_type, payload)
