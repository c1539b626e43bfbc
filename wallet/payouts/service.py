"""Payouts: amount + fee held at the request, sent to the provider by the worker, then moved
by the provider's snapshots.

A payout is written `sending` with its hold before the provider is asked, under an id that
is also our idempotency key there. The worker never sends blindly: it first asks the provider
by the key, and creates only if the provider has nothing under it, again under the same key.
So a payout whose answer was lost (`unknown`) or whose worker was killed mid-call is resolved
by asking, and the provider holds one payout per key whatever happens. Snapshots apply only if
their version is newer than the last one applied; the ledger then moves from what the old
status implies to what the new one does:

- sending, unknown, pending, processing: amount + fee held on the wallet (pending out);
- paid: the hold voided and posted as one transaction with the external reference
  ('payout', id): the wallet pays amount + fee, `bank:<provider>` takes the amount, `fees` the
  fee;
- failed: the hold voided, nothing moved;
- returned after paid: the posting reversed by a linked transaction, crediting the wallet back.
"""

import logging
from datetime import UTC, datetime
from enum import IntEnum

from sqlalchemy.orm import Session, sessionmaker

import fiat
from wallet.assets.service import Catalogue
from wallet.bank_accounts.service import payment_account
from wallet.banking.models import EventOutcome
from wallet.banking.service import (
    FeeSchedule,
    Rail,
    fees_account,
    known_payment,
    provider_account,
    provider_request,
    record_unresolved,
    run_in_turn,
)
from wallet.banking.service import apply_snapshot as apply_provider_snapshot
from wallet.database import run_transaction
from wallet.events.service import Event, emit_many
from wallet.ids import new_id
from wallet.ledger import service as ledger
from wallet.ledger.service import (
    ExternalReference,
    Posting,
    Reason,
    TransactionRequest,
    lock_accounts,
    user_account,
)
from wallet.payouts.models import PAYOUT_PREFIX, UNRESOLVED, Payout, PayoutStatus
from wallet.payouts.repository import find_payout
from wallet.payouts.schemas import PayoutOut
from wallet.wallets.errors import WalletNotActive
from wallet.wallets.models import WalletStatus
from wallet.wallets.service import lock_status

logger = logging.getLogger(__name__)

EXTERNAL_KIND = "payout"


class _Stage(IntEnum):
    """What the ledger holds for a payout in a status."""

    RELEASED = 0
    HELD = 1
    POSTED = 2
    REVERSED = 3


_STAGES = {
    PayoutStatus.SENDING: _Stage.HELD,
    PayoutStatus.UNKNOWN: _Stage.HELD,
    PayoutStatus.PENDING: _Stage.HELD,
    PayoutStatus.PROCESSING: _Stage.HELD,
    PayoutStatus.PAID: _Stage.POSTED,
    PayoutStatus.FAILED: _Stage.RELEASED,
    PayoutStatus.RETURNED: _Stage.REVERSED,
}


def request_payout(
    session: Session,
    tenant_id: str,
    *,
    wallet_id: str,
    bank_account_id: str,
    asset_code: str,
    amount: str,
    provider: str,
    fees: FeeSchedule,
    catalogue: Catalogue,
) -> Payout:
    """Hold amount + fee on the wallet and record the payout (`sending`) for the worker."""
    # The wallet's payouts and withdrawals are made one at a time (see `lock_status`).
    status = lock_status(session, tenant_id, wallet_id)
    if status != WalletStatus.ACTIVE:
        raise WalletNotActive(f"wallet {wallet_id} is {status}")
    asset = catalogue.asset(asset_code)
    account = payment_account(
        session,
        tenant_id,
        bank_account_id,
        wallet_id=wallet_id,
        provider=provider,
        asset=asset.code,
    )
    units = asset.parse(amount)
    fee = fees.quote(Rail.PAYOUT, asset, units).fee
    wallet_account = user_account(session, wallet_id, asset.code)
    bank = provider_account(session, provider, asset.code)
    payout_id = new_id(PAYOUT_PREFIX)
    hold = ledger.place_hold(
        session,
        wallet_account,
        bank,
        units + fee,
        Reason.PAYOUT,
        metadata={"payout_id": payout_id},
    )
    payout = Payout(
        id=payout_id,
        tenant_id=tenant_id,
        wallet_id=wallet_id,
        bank_account_id=account.id,
        provider=provider,
        asset=asset.code,
        amount=units,
        fee=fee,
        status=PayoutStatus.SENDING,
        provider_version=0,
        hold_id=hold.id,
    )
    session.add(payout)
    session.flush()
    _announce(session, payout, catalogue, "payout.created")
    return payout


def resolve_payout(
    sessions: sessionmaker[Session], bank: fiat.BankProvider, payout_id: str, catalogue: Catalogue
) -> None:
    """Bring a `sending` or `unknown` payout to the provider's word.

    Each create is counted, committed, before it is sent. The first is sent at once; after
    one may have reached the provider, the provider is asked by our key first, and a create
    is sent again (under the same key) only if it has nothing under it.
    """
    claimed = run_transaction(sessions, lambda s: _claim_attempt(s, payout_id))
    if claimed is None:
        return
    request, first = claimed
    snapshot: fiat.Payout | None
    try:
        snapshot = None if first else bank.get_payout(payout_id)
    except fiat.NotFound:
        snapshot = None
    except fiat.OutcomeUnknown as error:
        logger.warning("payout %s: the provider did not answer: %s", payout_id, error)
        return
    if snapshot is None:
        snapshot = _create(sessions, bank, request, catalogue)
    if snapshot is not None:
        run_in_turn(sessions, lambda s: apply_snapshot(s, payout_id, snapshot, catalogue))


def _create(
    sessions: sessionmaker[Session],
    bank: fiat.BankProvider,
    request: fiat.PayoutRequest,
    catalogue: Catalogue,
) -> fiat.Payout | None:
    payout_id = request.idempotency_key
    try:
        return bank.create_payout(request)
    except fiat.OutcomeUnknown as error:
        logger.warning("payout %s: the provider's answer was lost: %s", payout_id, error)
        run_transaction(sessions, lambda s: _mark(s, payout_id, PayoutStatus.UNKNOWN, catalogue))
    except fiat.ProviderRejected as refusal:
        code = refusal.code
        run_transaction(
            sessions, lambda s: _mark(s, payout_id, PayoutStatus.FAILED, catalogue, code)
        )
    return None


def _claim_attempt(session: Session, payout_id: str) -> tuple[fiat.PayoutRequest, bool] | None:
    """The provider request of an unresolved payout, and whether no create was begun before;
    counts the attempt about to be made."""
    payout = find_payout(session, payout_id, lock=True)
    if payout is None or payout.status not in UNRESOLVED:
        return None
    first = payout.send_attempts == 0
    payout.send_attempts += 1
    payout.updated_at = datetime.now(UTC)
    return provider_request(session, payout, fiat.PayoutRequest), first


def _mark(
    session: Session,
    payout_id: str,
    status: PayoutStatus,
    catalogue: Catalogue,
    failure_code: str | None = None,
) -> None:
    def release(payout: Payout) -> None:
        if status == PayoutStatus.FAILED:
            _book(session, payout, _Stage.HELD, _Stage.RELEASED)

    record_unresolved(
        session,
        find_payout(session, payout_id, lock=True),
        status,
        failure_code,
        unresolved=UNRESOLVED,
        book=release,
        announce=lambda payout: _announce(session, payout, catalogue),
    )


def apply_provider_payout(
    session: Session, provider: str, snapshot: fiat.Payout, catalogue: Catalogue
) -> EventOutcome:
    """Apply a payout snapshot from the provider's webhook (our key is its idempotency key)."""
    payout = find_payout(session, snapshot.idempotency_key, lock=True)
    if not known_payment(payout, provider, snapshot):
        return EventOutcome.UNMATCHED
    return _apply(session, payout, snapshot, catalogue)


def apply_snapshot(
    session: Session, payout_id: str, snapshot: fiat.Payout, catalogue: Catalogue
) -> EventOutcome:
    """Move the payout to the snapshot's status if the snapshot is newer than the last applied."""
    payout = find_payout(session, payout_id, lock=True)
    if payout is None:
        return EventOutcome.UNMATCHED
    return _apply(session, payout, snapshot, catalogue)


def _apply(
    session: Session, payout: Payout, snapshot: fiat.Payout, catalogue: Catalogue
) -> EventOutcome:
    """Apply the snapshot to the locked payout."""
    return apply_provider_snapshot(
        session,
        payout,
        snapshot,
        book=lambda old, new: _book(
            session, payout, _STAGES[PayoutStatus(old)], _STAGES[PayoutStatus(new)]
        ),
        announce=lambda: _announce(session, payout, catalogue),
    )


def _book(session: Session, payout: Payout, old: _Stage, new: _Stage) -> None:
    """Move the payout's ledger entries from stage `old` to `new`."""
    if new == old or old in (_Stage.RELEASED, _Stage.REVERSED):
        return
    bank = provider_account(session, payout.provider, payout.asset)
    fees = fees_account(session, payout.asset)
    wallet = user_account(session, payout.wallet_id, payout.asset)
    lock_accounts(session, (bank, fees, wallet))
    metadata = {"payout_id": payout.id}
    if old == _Stage.HELD:
        ledger.void_hold(session, payout.hold_id)
    if new >= _Stage.POSTED and payout.post_transaction_id is None:
        postings = [Posting(wallet, -(payout.amount + payout.fee)), Posting(bank, payout.amount)]
        if payout.fee:
            postings.append(Posting(fees, payout.fee))
        payout.post_transaction_id = ledger.post(
            session,
            TransactionRequest(
                reason=Reason.PAYOUT,
                postings=postings,
                metadata=metadata,
                external=ExternalReference(EXTERNAL_KIND, payout.id),
            ),
        )
    if new == _Stage.REVERSED and payout.reversal_transaction_id is None:
        assert payout.post_transaction_id is not None
        payout.reversal_transaction_id = ledger.reverse(
            session, payout.post_transaction_id, metadata
        )


def _announce(
    session: Session, payout: Payout, catalogue: Catalogue, event_type: str | None = None
) -> None:
    payload = PayoutOut.of(payout, catalogue.asset(payout.asset))
    kind = event_type or f"payout.{payout.status}"
    emit_many(session, [Event(payout.tenant_id, kind, payload)])
