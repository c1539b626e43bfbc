"""Queries of the bank side: provider events stored once by id, the provider's ledger accounts."""

import json

from sqlalchemy import text
from sqlalchemy.orm import Session

from fiat import ProviderEvent
from fiat.wire import encode_event
from wallet.banking.models import EventOutcome
from wallet.ledger.service import system_account

FEES_ACCOUNT = "fees"

_CLAIM_EVENT = text(
    "INSERT INTO provider_events (provider, event_id, event_type, payment_id, payment_version, "
    "outcome, payload) VALUES (:provider, :event_id, :event_type, :payment_id, :version, "
    "'unmatched', CAST(:payload AS jsonb)) ON CONFLICT DO NOTHING RETURNING 1"
)
_SET_OUTCOME = text(
    "UPDATE provider_events SET outcome = :outcome WHERE provider = :provider AND event_id = :id"
)


def claim_event(session: Session, provider: str, event: ProviderEvent) -> bool:
    """Store the event under its id; False if it was stored before (a redelivery).

    A concurrent delivery of the same event waits on the row until this transaction ends.
    """
    params = {
        "provider": provider,
        "event_id": event.id,
        "event_type": event.type,
        "payment_id": event.data.id,
        "version": event.data.version,
        "payload": json.dumps(encode_event(event)),
    }
    return session.execute(_CLAIM_EVENT, params).first() is not None


def set_event_outcome(
    session: Session, provider: str, event_id: str, outcome: EventOutcome
) -> None:
    session.execute(_SET_OUTCOME, {"provider": provider, "id": event_id, "outcome": outcome})


def bank_account_name(provider: str) -> str:
    """The ledger's system account of what `provider` holds for us: `bank:<provider>`."""
    return f"bank:{provider}"


def provider_account(session: Session, provider: str, asset: str) -> int:
    """`bank:<provider>` in `asset`: the outside world's side of every pay-in and payout."""
    return system_account(session, bank_account_name(provider), asset)


def fees_account(session: Session, asset: str) -> int:
    return system_account(session, FEES_ACCOUNT, asset)
