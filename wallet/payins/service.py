"""Pay-ins: recorded first, created at the provider, then moved by the provider's snapshots.

A pay-in is written `creating` before the provider is asked, under an id that is also our
idempotency key at the provider; so a lost answer (`unknown`) or a crash is resolved by asking
the provider by that key, and creating again under it is harmless. Every provider snapshot,
from an answer or a webhook, is applied only if its version is newer than the last one
applied, whatever order they come in; the ledger then moves from what the old status implies
to what the new one does:

- pending, processing: a hold from `bank:<provider>` to the wallet of the net amount (pending
  in, not spendable);
- succeeded: the hold voided, the amount posted from `bank:<provider>`, the fee to `fees`, the
  rest to the wallet, with the external reference ('payin', id): never twice;
- failed: the hold voided;
- returned, charged back: the credit reversed by a linked transaction, even if the wallet has
  spent it; the wallet's balance then goes negative and the wallet is restricted.
"""

import logging
from enum import IntEnum

from sqlalchemy import text
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
from wallet.ledger.errors import InsufficientFunds
from wallet.ledger.service import (
    ExternalReference,
    Posting,
    Reason,
    TransactionRequest,
    user_account,
)
from wallet.payins.models import PAYIN_PREFIX, UNRESOLVED, Payin, PayinStatus
from wallet.payins.repository import find_payin
from wallet.payins.schemas import PayinCreate, PayinOut
from wallet.wallets.errors import WalletNotActive
from wallet.wallets.models import WalletStatus
from wallet.wallets.service import get_wallet

logger = logging.getLogger(__name__)

EXTERNAL_KIND = "payin"


class _Stage(IntEnum):
    """What the ledger holds for a pay-in in a status."""

    NONE = 0
    HELD = 1
    CREDITED = 2
    REVERSED = 3


_STAGES = {
    PayinStatus.CREATING: _Stage.NONE,
    PayinStatus.UNKNOWN: _Stage.NONE,
    PayinStatus.FAILED: _Stage.NONE,
    PayinStatus.PENDING: _Stage.HELD,
    PayinStatus.PROCESSING: _Stage.HELD,
    PayinStatus.SUCCEEDED: _Stage.CREDITED,
    PayinStatus.RETURNED: _Stage.REVERSED,
    PayinStatus.CHARGED_BACK: _Stage.REVERSED,
}


def start_payin(
    session: Session,
    tenant_id: str,
    request: PayinCreate,
    *,
    provider: str,
    fees: FeeSchedule,
    catalogue: Catalogue,
) -> Payin:
    """Record a pay-in (`creating`) after checking the wallet, bank account, asset and fee."""
    wallet = get_wallet(session, tenant_id, request.wallet_id)
    if wallet.status not in (WalletStatus.ACTIVE, WalletStatus.RESTRICTED):
        raise WalletNotActive(f"wallet {wallet.id} is {wallet.status}")
    asset = catalogue.asset(request.asset)
    account = payment_account(
        session,
        tenant_id,
        request.bank_account_id,
        wallet_id=wallet.id,
        provider=provider,
        asset=asset.code,
    )
    amount = asset.parse(request.amount)
    quote = fees.quote(Rail.PAYIN, asset, amount)
    payin = Payin(
        id=new_id(PAYIN_PREFIX),
        tenant_id=tenant_id,
        wallet_id=wallet.id,
        bank_account_id=account.id,
        provider=provider,
        asset=asset.code,
        amount=amount,
        fee=quote.fee,
        status=PayinStatus.CREATING,
        provider_version=0,
    )
    session.add(payin)
    session.flush()
    return payin


def submit_payin(
    sessions: sessionmaker[Session], bank: fiat.BankProvider, payin_id: str, catalogue: Catalogue
) -> None:
    """Ask the provider to create the pay-in (again, under the same key, if it may never have
    reached it) and record the answer: its snapshot, `unknown`, or a definite refusal."""
    request = run_in_turn(sessions, lambda s: _provider_request(s, payin_id))
    if request is None:
        return
    try:
        snapshot = bank.create_payin(request)
    except fiat.OutcomeUnknown as error:
        logger.warning("pay-in %s: the provider's answer was lost: %s", payin_id, error)
        run_transaction(sessions, lambda s: _mark(s, payin_id, PayinStatus.UNKNOWN, catalogue))
    except fiat.ProviderRejected as refusal:
        code = refusal.code
        run_transaction(sessions, lambda s: _mark(s, payin_id, PayinStatus.FAILED, catalogue, code))
    else:
        run_in_turn(sessions, lambda s: apply_snapshot(s, payin_id, snapshot, catalogue))


def resolve_payin(
    sessions: sessionmaker[Session], bank: fiat.BankProvider, payin_id: str, catalogue: Catalogue
) -> None:
    """Settle a `creating` or `unknown` pay-in by asking the provider by our key: its snapshot
    if it has one; if it never took the request, the create is sent again under the key."""
    try:
        snapshot = bank.get_payin(payin_id)
    except fiat.NotFound:
        submit_payin(sessions, bank, payin_id, catalogue)
    except fiat.OutcomeUnknown as error:
        logger.warning("pay-in %s is still unknown: %s", payin_id, error)
    else:
        run_in_turn(sessions, lambda s: apply_snapshot(s, payin_id, snapshot, catalogue))


def _provider_request(session: Session, payin_id: str) -> fiat.PayinRequest | None:
    payin = find_payin(session, payin_id)
    if payin is None or payin.status not in UNRESOLVED:
        return None
    return provider_request(session, payin, fiat.PayinRequest)


def _mark(
    session: Session,
    payin_id: str,
    status: PayinStatus,
    catalogue: Catalogue,
    failure_code: str | None = None,
) -> None:
    record_unresolved(
        session,
        find_payin(session, payin_id, lock=True),
        status,
        failure_code,
        unresolved=UNRESOLVED,
        book=lambda _: None,
        announce=lambda payin: _announce(session, payin, catalogue),
    )


def apply_provider_payin(
    session: Session, provider: str, snapshot: fiat.Payin, catalogue: Catalogue
) -> EventOutcome:
    """Apply a pay-in snapshot from the provider's webhook (our key is its idempotency key)."""
    payin = find_payin(session, snapshot.idempotency_key, lock=True)
    if not known_payment(payin, provider, snapshot):
        return EventOutcome.UNMATCHED
    return _apply(session, payin, snapshot, catalogue)


def apply_snapshot(
    session: Session, payin_id: str, snapshot: fiat.Payin, catalogue: Catalogue
) -> EventOutcome:
    """Move the pay-in to the snapshot's status if the snapshot is newer than the last applied."""
    payin = find_payin(session, payin_id, lock=True)
    if payin is None:
        return EventOutcome.UNMATCHED
    return _apply(session, payin, snapshot, catalogue)


def _apply(
    session: Session, payin: Payin, snapshot: fiat.Payin, catalogue: Catalogue
) -> EventOutcome:
    """Apply the snapshot to the locked pay-in."""
    return apply_provider_snapshot(
        session,
        payin,
        snapshot,
        book=lambda old, new: _book(
            session, payin, _STAGES[PayinStatus(old)], _STAGES[PayinStatus(new)]
        ),
        announce=lambda: _announce(session, payin, catalogue),
    )


def _book(session: Session, payin: Payin, old: _Stage, new: _Stage) -> None:
    """Move the pay-in's ledger entries from stage `old` to `new` (a later stage only)."""
    if new <= old and not (old == _Stage.HELD and new == _Stage.NONE):
        return
    bank = provider_account(session, payin.provider, payin.asset)
    fees = fees_account(session, payin.asset)
    wallet = user_account(session, payin.wallet_id, payin.asset)
    metadata = {"payin_id": payin.id}
    if new == _Stage.HELD:
        hold = ledger.place_hold(
            session, bank, wallet, payin.net_amount, Reason.PAYIN, metadata=metadata
        )
        payin.hold_id = hold.id
    # The credit comes before the hold is voided: it locks all of the pay-in's accounts at
    # once, in the ledger's order, and each later call locks some of them again; so no lock
    # is taken out of order, and none needs taking ahead (the shared bank account's least of
    # all). The hold only reserves the wallet's pending in, never the money credited.
    if new >= _Stage.CREDITED and payin.credit_transaction_id is None:
        postings = [Posting(bank, -payin.amount), Posting(wallet, payin.net_amount)]
        if payin.fee:
            postings.append(Posting(fees, payin.fee))
        payin.credit_transaction_id = ledger.post(
            session,
            TransactionRequest(
                reason=Reason.PAYIN,
                postings=postings,
                metadata=metadata,
                external=ExternalReference(EXTERNAL_KIND, payin.id),
            ),
        )
    if old == _Stage.HELD and payin.hold_id is not None:
        ledger.void_hold(session, payin.hold_id)
    if new == _Stage.REVERSED and payin.reversal_transaction_id is None:
        payin.reversal_transaction_id = _reverse(session, payin, wallet)


def _reverse(session: Session, payin: Payin, wallet_account: int) -> int:
    """Reverse the credit; if the wallet has spent it, its balance goes negative and the wallet
    is restricted (nothing may leave it) until an operator looks."""
    assert payin.credit_transaction_id is not None
    metadata = {"payin_id": payin.id}
    try:
        return ledger.reverse(session, payin.credit_transaction_id, metadata)
    except InsufficientFunds:
        pass
    session.execute(
        text("UPDATE accounts SET allow_negative = true WHERE id = :id"), {"id": wallet_account}
    )
    session.execute(
        text("UPDATE wallets SET status = 'restricted' WHERE id = :id AND status = 'active'"),
        {"id": payin.wallet_id},
    )
    logger.critical(
        "ALERT pay-in %s of %d %s reversed after the wallet %s spent it: balance negative, "
        "wallet restricted",
        payin.id,
        payin.amount,
        payin.asset,
        payin.wallet_id,
    )
    return ledger.reverse(session, payin.credit_transaction_id, metadata)


def _announce(session: Session, payin: Payin, catalogue: Catalogue) -> None:
    payload = PayinOut.of(payin, catalogue.asset(payin.asset))
    emit_many(session, [Event(payin.tenant_id, f"payin.{payin.status}", payload)])
