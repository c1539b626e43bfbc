"""Pay-ins: recorded first, created at the provider, then moved by the provider's snapshots.

A pay-in is written `creating` before the provider is asked, under an id that is also our
idempotency key at the provider; so a lost answer (`unknown`) or a crash is resolved by asking
the provider by that key, and creating again under it is harmless. Every provider snapshot,
from an answer or a webhook, is applied only if its version is newer than the last one
applied, whatever order they come in; the ledger then moves from what the old status implies
to what the new one does (`payin_apply`, one statement in the database):

- pending, processing: a hold from `bank:<provider>` to the wallet of the net amount (pending
  in, not spendable);
- succeeded: the hold voided, the amount posted from `bank:<provider>`, the fee to `fees`, the
  rest to the wallet, with the external reference ('payin', id): never twice;
- failed: the hold voided;
- returned, charged back: the credit reversed by a linked transaction, even if the wallet has
  spent it; the wallet's balance then goes negative and the wallet is restricted.
"""

import logging

from sqlalchemy.orm import Session, sessionmaker

import fiat
from fiat.wire import encode_payment
from wallet.assets.service import Catalogue
from wallet.bank_accounts.service import payment_account
from wallet.banking.models import EventOutcome
from wallet.banking.service import (
    FEES_ACCOUNT,
    FeeSchedule,
    Rail,
    alert_mismatch,
    bank_account_name,
    log_unmatched,
    provider_request,
    record_unresolved,
    run_in_turn,
)
from wallet.database import run_transaction
from wallet.events.service import Event, emit_many
from wallet.ids import new_id
from wallet.payins.models import PAYIN_PREFIX, UNRESOLVED, Payin, PayinStatus
from wallet.payins.repository import find_payin, payin_apply
from wallet.payins.schemas import PayinCreate, PayinOut
from wallet.wallets.errors import WalletNotActive
from wallet.wallets.models import WalletStatus
from wallet.wallets.service import get_wallet

logger = logging.getLogger(__name__)


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
) -> Payin | None:
    """Ask the provider to create the pay-in again, under the same key, if it may never have
    reached it (`creating`, `unknown`): `send_payin`. None if it is past that."""
    request = run_in_turn(sessions, lambda s: _provider_request(s, payin_id))
    return None if request is None else send_payin(sessions, bank, request, catalogue)


def send_payin(
    sessions: sessionmaker[Session],
    bank: fiat.BankProvider,
    request: fiat.PayinRequest,
    catalogue: Catalogue,
) -> Payin:
    """Ask the provider to create the pay-in and record the answer: its snapshot, `unknown`,
    or a definite refusal; the pay-in as it then is."""
    payin_id = request.idempotency_key
    try:
        snapshot = bank.create_payin(request)
    except fiat.OutcomeUnknown as error:
        logger.warning("pay-in %s: the provider's answer was lost: %s", payin_id, error)
        return run_transaction(
            sessions, lambda s: _mark(s, payin_id, PayinStatus.UNKNOWN, catalogue)
        )
    except fiat.ProviderRejected as refusal:
        code = refusal.code
        return run_transaction(
            sessions, lambda s: _mark(s, payin_id, PayinStatus.FAILED, catalogue, code)
        )
    _, payin = run_in_turn(sessions, lambda s: _apply(s, bank.name, payin_id, snapshot, catalogue))
    assert payin is not None  # recorded before the provider was asked
    return payin


def payin_request(session: Session, payin: Payin) -> fiat.PayinRequest:
    """The provider request creating `payin`, under its id as the idempotency key."""
    return provider_request(session, payin, fiat.PayinRequest)


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
        run_in_turn(sessions, lambda s: apply_snapshot(s, bank.name, payin_id, snapshot, catalogue))


def _provider_request(session: Session, payin_id: str) -> fiat.PayinRequest | None:
    payin = find_payin(session, payin_id)
    if payin is None or payin.status not in UNRESOLVED:
        return None
    return payin_request(session, payin)


def _mark(
    session: Session,
    payin_id: str,
    status: PayinStatus,
    catalogue: Catalogue,
    failure_code: str | None = None,
) -> Payin:
    payin = find_payin(session, payin_id, lock=True)
    assert payin is not None  # recorded before the provider was asked
    record_unresolved(
        session,
        payin,
        status,
        failure_code,
        unresolved=UNRESOLVED,
        book=lambda _: None,
        announce=lambda payin: _announce(session, payin, catalogue),
    )
    return payin


def apply_provider_payin(
    session: Session, provider: str, snapshot: fiat.Payin, catalogue: Catalogue
) -> EventOutcome:
    """Apply a pay-in snapshot from the provider's webhook (our key is its idempotency key)."""
    return apply_snapshot(session, provider, snapshot.idempotency_key, snapshot, catalogue)


def apply_snapshot(
    session: Session, provider: str, payin_id: str, snapshot: fiat.Payin, catalogue: Catalogue
) -> EventOutcome:
    """Move the pay-in to the snapshot's status if the snapshot is newer than the last applied,
    with its ledger entries (`payin_apply`, one statement), and announce the change."""
    outcome, _ = _apply(session, provider, payin_id, snapshot, catalogue)
    return outcome


def _apply(
    session: Session, provider: str, payin_id: str, snapshot: fiat.Payin, catalogue: Catalogue
) -> tuple[EventOutcome, Payin | None]:
    """`apply_snapshot`, and the pay-in as it now is (None if there is no such pay-in)."""
    answer = payin_apply(
        session,
        payin_id,
        provider,
        encode_payment(snapshot),
        bank=bank_account_name(provider),
        fees=FEES_ACCOUNT,
    )
    if answer.payin is None:
        log_unmatched(provider, snapshot)
        return EventOutcome.UNMATCHED, None
    if answer.outcome == "stale":
        return EventOutcome.STALE, answer.payin
    if answer.outcome == "mismatch":
        alert_mismatch(answer.payin, snapshot)
        return EventOutcome.UNMATCHED, answer.payin
    if answer.restricted:
        logger.critical(
            "ALERT pay-in %s of %d %s reversed after the wallet %s spent it: balance negative, "
            "wallet restricted",
            answer.payin.id,
            answer.payin.amount,
            answer.payin.asset,
            answer.payin.wallet_id,
        )
    if answer.changed:
        _announce(session, answer.payin, catalogue)
    return EventOutcome.APPLIED, answer.payin


def _announce(session: Session, payin: Payin, catalogue: Catalogue) -> None:
    payload = PayinOut.of(payin, catalogue.asset(payin.asset))
    emit_many(session, [Event(payin.tenant_id, f"payin.{payin.status}", payload)])
