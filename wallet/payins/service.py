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
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

import fiat
from fiat.wire import encode_event, encode_payment
from wallet.assets.service import Catalogue
from wallet.bank_accounts.errors import BankAccountMismatch, UnknownBankAccount
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
from wallet.database import (
    RETRYABLE_SQLSTATES,
    database_unavailable,
    run_transaction,
    sqlstate,
)
from wallet.errors import WalletError
from wallet.events.service import Event, emit_many
from wallet.idempotency.service import IdempotencyKey, Outcome, once_answer
from wallet.ids import new_id
from wallet.ledger.errors import ErrorCode
from wallet.payins.models import PAYIN_PREFIX, UNRESOLVED, Payin, PayinStatus
from wallet.payins.repository import (
    PayinApplied,
    find_payin,
    find_payins,
    payins_apply,
    payins_once,
)
from wallet.payins.schemas import PayinCreate, PayinOut
from wallet.wallets.errors import UnknownWallet, WalletNotActive

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyedPayin:
    """A pay-in request of the API under its idempotency key."""

    tenant_id: str
    body: PayinCreate
    key: IdempotencyKey


@dataclass(frozen=True)
class MadePayin:
    """What a pay-in request made: the outcome under its key (a refusal is one) and, unless
    refused, the pay-in as it now is."""

    outcome: Outcome
    payin: Payin | None


def make_payins(
    sessions: sessionmaker[Session],
    bank: fiat.BankProvider,
    requests: Sequence[KeyedPayin],
    *,
    fees: FeeSchedule,
    catalogue: Catalogue,
) -> list[MadePayin | Exception]:
    """Make pay-in requests together: their records and keys in one transaction, then one
    call to the provider for the pay-ins it may not have (those just recorded, and a retry's
    still `creating` or `unknown`), then its answers (`send_payins`). A request answers with
    what it made, or its own error (its key's `IdempotencyConflict`, say): one request's
    failure is never the others'.

    The records commit before the provider is asked: a crash after that leaves pay-ins to
    resolve by asking the provider, never a payment at the provider we do not know of.
    """

    def record(session: Session) -> tuple[list[Outcome | Exception], list[fiat.PayinRequest]]:
        outcomes, made = _record(
            session, requests, provider=bank.name, fees=fees, catalogue=catalogue
        )
        unsent = {request.idempotency_key: request for request in made}
        for payin_id in filter(None, map(_payin_id, outcomes)):
            if payin_id not in unsent:  # a retry: the provider may not have it yet
                request = _provider_request(session, payin_id)
                if request is not None:
                    unsent[payin_id] = request
        return outcomes, list(unsent.values())

    # No turn: nothing here books against the accounts payments share.
    outcomes, unsent = run_transaction(sessions, record)
    payins = send_payins(sessions, bank, unsent, catalogue) if unsent else {}
    unread = [payin_id for o in outcomes if (payin_id := _payin_id(o)) and payin_id not in payins]
    if unread:
        payins |= run_transaction(sessions, lambda s: {p.id: p for p in find_payins(s, unread)})
    return [
        outcome
        if isinstance(outcome, Exception)
        else MadePayin(outcome, payins.get(_payin_id(outcome) or ""))
        for outcome in outcomes
    ]


def _record(
    session: Session,
    requests: Sequence[KeyedPayin],
    *,
    provider: str,
    fees: FeeSchedule,
    catalogue: Catalogue,
) -> tuple[list[Outcome | Exception], list[fiat.PayinRequest]]:
    """Each request's outcome under its key, and the provider requests creating the pay-ins
    recorded, in one statement (`payins_once`). A database error of one request's making (not
    the batch's) is that request's alone: each is then recorded on its own."""
    try:
        with session.begin_nested():
            return _record_together(session, requests, provider, fees, catalogue)
    except DBAPIError as error:
        if _the_batchs(error) or len(requests) == 1:
            raise
    outcomes: list[Outcome | Exception] = []
    made: list[fiat.PayinRequest] = []
    for keyed in requests:
        try:
            with session.begin_nested():
                [outcome], one = _record_together(session, [keyed], provider, fees, catalogue)
        except DBAPIError as error:
            if _the_batchs(error):
                raise
            logger.exception(
                "a pay-in request under key %r was refused by the database", keyed.key.key
            )
            outcome, one = error, []
        outcomes.append(outcome)
        made += one
    return outcomes, made


def _record_together(
    session: Session,
    requests: Sequence[KeyedPayin],
    provider: str,
    fees: FeeSchedule,
    catalogue: Catalogue,
) -> tuple[list[Outcome | Exception], list[fiat.PayinRequest]]:
    """`_record` in one statement; a key used twice among the requests answers its second use
    as a retry of the first."""
    first: dict[tuple[str, str], int] = {}
    for n, keyed in enumerate(requests):
        first.setdefault((keyed.key.scope, keyed.key.key), n)
    unique = [requests[n] for n in first.values()]
    items = [_statement_item(keyed, provider, fees, catalogue) for keyed in unique]
    answers = dict(zip(first.values(), payins_once(session, items, provider), strict=True))
    made = [
        fiat.PayinRequest(item["id"], answers[n]["token"], int(item["amount"]), item["asset"])
        for n, item in zip(first.values(), items, strict=True)
        if "token" in answers[n]
    ]
    outcomes: list[Outcome | Exception] = []
    for n, keyed in enumerate(requests):
        at = first[(keyed.key.scope, keyed.key.key)]
        answer = answers[at] if at == n else _as_held(requests[at], answers[at])
        outcomes.append(once_answer(keyed.key, answer, _refusal))
    return outcomes, made


def _statement_item(
    keyed: KeyedPayin, provider: str, fees: FeeSchedule, catalogue: Catalogue
) -> dict[str, Any]:
    """The request as `payins_once` takes it: priced, or with the problem it is refused with
    before the database is asked (an asset or amount the service cannot take)."""
    item: dict[str, Any] = {
        "tenant": keyed.key.scope,
        "key": keyed.key.key,
        "request_hash": keyed.key.request_hash,
    }
    body = keyed.body
    try:
        asset = catalogue.asset(body.asset)
        amount = asset.parse(body.amount)
        fee = fees.quote(Rail.PAYIN, asset, amount).fee
    except WalletError as error:
        if error.status_code >= 500:
            raise  # not an answer but "not now": nothing is stored under the key
        return item | {"problem": error.to_problem()}
    return item | {
        "id": new_id(PAYIN_PREFIX),
        "wallet": body.wallet_id,
        "bank_account": body.bank_account_id,
        "asset": asset.code,
        "amount": str(amount),
        "fee": str(fee),
    }


def _as_held(keyed: KeyedPayin, answer: dict[str, Any]) -> dict[str, Any]:
    """What a key holds after `answer` to its first use, as a retry of it is answered."""
    if answer.get("replayed"):
        return answer
    outcome = answer["outcome"] if "outcome" in answer else {"refused": answer["refused"]}
    return {"replayed": True, "request_hash": keyed.key.request_hash, "outcome": outcome}


def _refusal(failure: dict[str, Any]) -> WalletError:
    """A refusal as `payins_once` stores it under the key, as the error it answers."""
    code = ErrorCode(failure["error"])
    if code == ErrorCode.UNKNOWN_WALLET:
        return UnknownWallet(f"no wallet {failure['wallet_id']}")
    if code == ErrorCode.WALLET_NOT_ACTIVE:
        return WalletNotActive(f"wallet {failure['wallet_id']} is {failure['status']}")
    if code == ErrorCode.UNKNOWN_BANK_ACCOUNT:
        return UnknownBankAccount(f"no bank account {failure['bank_account_id']}")
    assert code == ErrorCode.BANK_ACCOUNT_MISMATCH, failure
    return BankAccountMismatch(
        f"bank account {failure['bank_account_id']} is linked to {failure['wallet_id']} "
        f"at {failure['provider']} in {failure['currency']}"
    )


def _payin_id(outcome: Outcome | Exception) -> str | None:
    if isinstance(outcome, Exception) or outcome.problem is not None:
        return None
    return str(outcome.unwrap()["payin_id"])


def submit_payin(
    sessions: sessionmaker[Session], bank: fiat.BankProvider, payin_id: str, catalogue: Catalogue
) -> None:
    """Ask the provider to create the pay-in again, under the same key, if it may never have
    reached it (`creating`, `unknown`): `send_payins`."""
    request = run_in_turn(sessions, lambda s: _provider_request(s, payin_id))
    if request is not None:
        send_payins(sessions, bank, [request], catalogue)


def send_payins(
    sessions: sessionmaker[Session],
    bank: fiat.BankProvider,
    requests: Sequence[fiat.PayinRequest],
    catalogue: Catalogue,
) -> dict[str, Payin]:
    """Ask the provider to create the pay-ins, in calls of up to `MAX_PAYINS_PER_CALL`, and
    record its answers (each one's snapshot or definite refusal; `unknown` for all of a call
    that got no answer): the pay-ins as they then are, by id."""
    payins: dict[str, Payin] = {}
    for start in range(0, len(requests), fiat.MAX_PAYINS_PER_CALL):
        part = requests[start : start + fiat.MAX_PAYINS_PER_CALL]
        answers: Sequence[fiat.Payin | fiat.ProviderRejected | None]
        try:
            answers = bank.create_payins(part)
        except fiat.OutcomeUnknown as error:
            logger.warning("%d pay-ins: the provider's answer was lost: %s", len(part), error)
            answers = [None] * len(part)
        payins |= _record_answers(sessions, bank.name, part, answers, catalogue)
    return payins


def _record_answers(
    sessions: sessionmaker[Session],
    provider: str,
    requests: Sequence[fiat.PayinRequest],
    answers: Sequence[fiat.Payin | fiat.ProviderRejected | None],
    catalogue: Catalogue,
) -> dict[str, Payin]:
    """Record the provider's answers to one call, all in one transaction; if that fails for one
    answer's sake, each in one of its own, so that the others are recorded."""
    keyed = [
        (request.idempotency_key, answer) for request, answer in zip(requests, answers, strict=True)
    ]
    try:
        return run_in_turn(sessions, partial(_record_all, provider, keyed, catalogue))
    except DBAPIError as error:
        if _the_batchs(error) or len(keyed) == 1:
            raise
    payins: dict[str, Payin] = {}
    for one in keyed:
        try:
            payins |= run_in_turn(sessions, partial(_record_all, provider, [one], catalogue))
        except DBAPIError as error:
            if _the_batchs(error):
                raise
            logger.exception(
                "pay-in %s: the provider's answer could not be recorded; "
                "it stays unresolved, to ask the provider about",
                one[0],
            )
    return payins


def _the_batchs(error: DBAPIError) -> bool:
    """Whether a database error is the whole batch's (to retry, or the database is out of
    reach) rather than one request's."""
    return database_unavailable(error) or sqlstate(error) in RETRYABLE_SQLSTATES


def _record_all(
    provider: str,
    answers: Sequence[tuple[str, fiat.Payin | fiat.ProviderRejected | None]],
    catalogue: Catalogue,
    session: Session,
) -> dict[str, Payin]:
    """The provider's answers for our pay-ins (by id) recorded: a lost answer `unknown`, a
    refusal `failed`, the snapshots applied together; the pay-ins as they now are.

    The pay-ins marked are locked one by one in id order, then `payins_apply` locks the others
    in id order, then the accounts. A delivery of the provider's events locks its pay-ins in id
    order too, and never holds a refused one (the provider has no such payment); a lost
    answer is lost for the whole call, so those calls hold no snapshot.
    """
    payins = {}
    for payin_id, answer in sorted(answers, key=lambda pair: pair[0]):
        if answer is None:
            payins[payin_id] = _mark(session, payin_id, PayinStatus.UNKNOWN, catalogue)
        elif isinstance(answer, fiat.ProviderRejected):
            payins[payin_id] = _mark(session, payin_id, PayinStatus.FAILED, catalogue, answer.code)
    snapshots = [_Item(payin_id, a) for payin_id, a in answers if isinstance(a, fiat.Payin)]
    for applied in _apply(session, provider, snapshots, catalogue) if snapshots else []:
        assert applied is not None and applied[1] is not None  # recorded before the call
        payins[applied[1].id] = applied[1]
    return payins


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
        announce=lambda payin: _announce(session, [payin], catalogue),
    )
    return payin


def apply_provider_payins(
    session: Session, provider: str, events: Sequence[fiat.ProviderEvent], catalogue: Catalogue
) -> list[EventOutcome | None]:
    """Store and apply the pay-in events of one webhook delivery, in its order, in one
    statement (`payins_apply`): each event's outcome, or None for an event stored before (a
    redelivery), which is not applied again. Our key is each snapshot's idempotency key."""
    items = [
        _Item(e.data.idempotency_key, e.data, e) for e in events if isinstance(e.data, fiat.Payin)
    ]
    assert len(items) == len(events), "pay-in events only"
    return [
        None if applied is None else applied[0]
        for applied in _apply(session, provider, items, catalogue)
    ]


def apply_snapshot(
    session: Session, provider: str, payin_id: str, snapshot: fiat.Payin, catalogue: Catalogue
) -> EventOutcome:
    """Move the pay-in to the snapshot's status if the snapshot is newer than the last applied,
    with its ledger entries, and announce the change."""
    [applied] = _apply(session, provider, [_Item(payin_id, snapshot)], catalogue)
    assert applied is not None  # not an event: never a duplicate
    return applied[0]


@dataclass(frozen=True)
class _Item:
    """A snapshot of the provider's for our pay-in `payin_id`, from its `event` if any."""

    payin_id: str
    snapshot: fiat.Payin
    event: fiat.ProviderEvent | None = None

    def sent(self) -> dict[str, Any]:
        item: dict[str, Any] = {"payin": self.payin_id, "snapshot": encode_payment(self.snapshot)}
        if self.event is not None:
            event = self.event
            item["event"] = {"id": event.id, "type": event.type, "payload": encode_event(event)}
        return item


def _apply(
    session: Session, provider: str, items: Sequence[_Item], catalogue: Catalogue
) -> list[tuple[EventOutcome, Payin | None] | None]:
    """Apply the snapshots in order, with their ledger entries, in one statement
    (`payins_apply`), and announce the changes: for each, its outcome and the pay-in as it now
    is (None if there is no such pay-in), or None for an event stored before."""
    answers = payins_apply(
        session,
        provider,
        [item.sent() for item in items],
        bank=bank_account_name(provider),
        fees=FEES_ACCOUNT,
    )
    results = [
        None if answer is None else _outcome(provider, item.snapshot, answer)
        for item, answer in zip(items, answers, strict=True)
    ]
    changed = [answer.payin for answer in answers if answer is not None and answer.changed]
    _announce(session, [payin for payin in changed if payin is not None], catalogue)
    return results


def _outcome(
    provider: str, snapshot: fiat.Payin, answer: PayinApplied
) -> tuple[EventOutcome, Payin | None]:
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
    return EventOutcome.APPLIED, answer.payin


def _announce(session: Session, payins: Sequence[Payin], catalogue: Catalogue) -> None:
    events = [
        Event(p.tenant_id, f"payin.{p.status}", PayinOut.of(p, catalogue.asset(p.asset)))
        for p in payins
    ]
    emit_many(session, events)
