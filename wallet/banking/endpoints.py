"""The bank's side over HTTP: the provider's webhooks, and fee quotes for the app."""

from functools import partial
from itertools import chain
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.orm import Session

from fiat import Payin, Payout, ProviderEvent, WebhookRejected
from wallet.api.auth import Reader
from wallet.api.dependencies import BankDep, CatalogueDep, RuntimeDep, known_query_parameters
from wallet.api.fields import Amount, FiatAssetCode
from wallet.api.problems import problem_responses
from wallet.banking.errors import UnknownProvider, WebhookRefused
from wallet.banking.models import EventOutcome
from wallet.banking.repository import claim_event, set_event_outcome
from wallet.banking.schemas import FeeQuoteOut, WebhookReceipt, WebhookReceipts
from wallet.banking.service import FeeSchedule, Rail, run_each_in_turn
from wallet.payins.service import apply_provider_payins
from wallet.payouts.service import apply_provider_payout

router = APIRouter(
    dependencies=[Depends(known_query_parameters)],
    tags=["fiat"],
    responses=problem_responses(400, 422, 500),
)


async def raw_body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/v1/fiat/webhooks/{provider}",
    summary="Receive the bank provider's events",
    responses=problem_responses(401, 404, 503),
)
def receive_webhook(
    provider: Annotated[str, Path(max_length=64)],
    request: Request,
    body: Annotated[bytes, Depends(raw_body)],
    runtime: RuntimeDep,
    bank: BankDep,
) -> WebhookReceipts:
    """Called by the provider, not the app. The signature and timestamp (Standard Webhooks)
    are checked on the raw bytes before anything is parsed or stored: 401 otherwise. A
    delivery's events are applied in its order; each event is stored once by its id, and a
    redelivery is acknowledged and not applied again. Events
    apply by the payment's version, so their order of arrival does not matter."""
    if provider != bank.name:
        raise UnknownProvider(f"no bank provider {provider!r}")
    try:
        events = bank.parse_webhook(body, request.headers)
    except WebhookRejected as error:
        raise WebhookRefused(str(error)) from None

    payins = [event for event in events if isinstance(event.data, Payin)]
    payouts = [event for event in events if not isinstance(event.data, Payin)]

    def receive_payins(session: Session) -> list[WebhookReceipt]:
        outcomes = apply_provider_payins(session, bank.name, payins, runtime.catalogue)
        return [_receipt(e, o) for e, o in zip(payins, outcomes, strict=True)]

    def receive_payout(session: Session, event: ProviderEvent) -> list[WebhookReceipt]:
        if not claim_event(session, bank.name, event):
            return [_receipt(event, None)]
        assert isinstance(event.data, Payout)
        outcome = apply_provider_payout(session, bank.name, event.data, runtime.catalogue)
        set_event_outcome(session, bank.name, event.id, outcome)
        return [_receipt(event, outcome)]

    # The pay-ins' events in one transaction, each payout's in one of its own.
    works = [receive_payins] if payins else []
    works += [partial(receive_payout, event=event) for event in payouts]
    done = run_each_in_turn(runtime.sessions, works, urgent=True)
    of_payins = iter(done.pop(0) if payins else [])
    of_payouts = iter(chain.from_iterable(done))
    receipts = [next(of_payins if isinstance(e.data, Payin) else of_payouts) for e in events]
    return WebhookReceipts(events=receipts)


def _receipt(event: ProviderEvent, outcome: EventOutcome | None) -> WebhookReceipt:
    """What the provider is answered for one event: None is a redelivery's copy."""
    if outcome is None:
        return WebhookReceipt(event_id=event.id, duplicate=True)
    return WebhookReceipt(event_id=event.id, duplicate=False, outcome=outcome)


@router.get(
    "/v1/fiat/fees",
    summary="Quote a pay-in or payout fee",
    responses=problem_responses(401, 403),
)
def quote_fee(
    principal: Reader,
    *,
    runtime: RuntimeDep,
    catalogue: CatalogueDep,
    rail: Annotated[Rail, Query()],
    asset: Annotated[FiatAssetCode, Query()],
    amount: Annotated[Amount, Query()],
) -> FeeQuoteOut:
    """The fee is a fixed amount plus basis points of the amount, per rail and currency."""
    money = catalogue.asset(asset)
    quote = FeeSchedule(runtime.settings.fiat_fees).quote(rail, money, money.parse(amount))
    return FeeQuoteOut(
        rail=rail,
        asset=money.code,
        amount=money.format(quote.amount),
        fee=money.format(quote.fee),
        net_amount=money.format(quote.amount - quote.fee),
    )
