"""Events out: the registry of event types, and the transactional outbox.

An event is a row written in the transaction of its change, of a type in the registry: the row
commits or rolls back with the change. Nothing leaves the process here; consumers (the webhook
relay) read the committed rows afterwards.

An endpoint subscribes to exact types (`transfer.created`), to a family (`deposit.*`) or to
everything (`*`). Later areas add their types to the registry, next to the ones they emit.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from pydantic import BaseModel
from sqlalchemy.orm import Session

from wallet.events import repository
from wallet.events.errors import UnknownEventType
from wallet.ids import new_id

EVENT_PREFIX = "evt"


EVENT_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "transfer.created": "An internal transfer between two wallets was made.",
        "deposit.seen": "A deposit was seen on chain or at the bank, not yet final.",
        "deposit.credited": "A deposit is final and was credited to its wallet.",
        "deposit.orphaned": "A deposit seen earlier left the chain in a reorganisation.",
        "deposit.reversed": "A credited deposit was reversed.",
        "chain.halted": "A chain's deposit watcher halted for an operator; its deposits wait.",
        "chain.resumed": "An operator resumed a halted chain's deposit watcher.",
        "withdrawal.requested": "A withdrawal was requested and its amount is held.",
        "withdrawal.approved": "A withdrawal waiting for an operator was approved.",
        "withdrawal.rejected": "A withdrawal was rejected and its hold released.",
        "withdrawal.completed": "A withdrawal to a wallet of this service was paid at once.",
        "withdrawal.cancelled": "A withdrawal was cancelled before signing; its hold released.",
        "withdrawal.waiting_liquidity": "The hot wallet cannot cover a withdrawal yet.",
        "withdrawal.signed": "A withdrawal's transaction was signed and stored, not yet sent.",
        "withdrawal.broadcast": "A withdrawal transaction was sent to its chain.",
        "withdrawal.unknown": "Whether a withdrawal's transaction went out cannot be told yet; "
        "its funds stay held until the chain shows it.",
        "withdrawal.mined": "A withdrawal's transaction was mined; confirmations are counted.",
        "withdrawal.reorged": "A withdrawal's mined transaction left the chain; it is re-sent.",
        "withdrawal.confirmed": "A withdrawal is final.",
        "withdrawal.failed": "A withdrawal definitely failed and its hold was released.",
        "custody.alert": "A hot wallet did something on chain the service did not expect; an "
        "operator should check it.",
        "payin.unknown": "The bank's answer to a new pay-in was lost; it is being asked again.",
        "payin.pending": "A fiat pay-in was created at the bank, waiting for the customer.",
        "payin.processing": "The customer paid a pay-in; the bank is settling it.",
        "payin.succeeded": "A fiat pay-in was received and credited.",
        "payin.failed": "A fiat pay-in failed; nothing was credited.",
        "payin.returned": "A credited pay-in was returned by the bank and its credit reversed.",
        "payin.charged_back": "A credited pay-in was charged back and its credit reversed.",
        "payout.created": "A fiat payout was requested; amount and fee are held.",
        "payout.unknown": "The bank's answer to a payout was lost; it is being asked again.",
        "payout.pending": "A fiat payout was accepted by the bank.",
        "payout.processing": "The bank is paying a payout out.",
        "payout.paid": "A fiat payout was paid out by the bank and posted.",
        "payout.failed": "A fiat payout failed and its hold was released.",
        "payout.returned": "A paid payout came back from the bank and was credited back.",
    }
)

ALL: Final = "*"
FAMILY_SUFFIX: Final = ".*"
FAMILIES: Final[frozenset[str]] = frozenset(name.split(".", 1)[0] for name in EVENT_TYPES)


def subscriptions() -> tuple[str, ...]:
    """Every pattern an endpoint can subscribe to: all, each family, each type."""
    return (ALL, *(family + FAMILY_SUFFIX for family in sorted(FAMILIES)), *EVENT_TYPES)


def is_subscription(pattern: str) -> bool:
    """Whether `pattern` names an event type, a family of them (`deposit.*`), or all (`*`)."""
    if pattern == ALL or pattern in EVENT_TYPES:
        return True
    return pattern.endswith(FAMILY_SUFFIX) and pattern.removesuffix(FAMILY_SUFFIX) in FAMILIES


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether a subscription to `patterns` covers `event_type`."""
    family = event_type.split(".", 1)[0] + FAMILY_SUFFIX
    return any(pattern in (event_type, family, ALL) for pattern in patterns)


def registered(event_type: str) -> str:
    """`event_type`, checked against the registry: every outbox row's type goes through here."""
    if event_type not in EVENT_TYPES:
        raise UnknownEventType(f"{event_type!r} is not a registered event type")
    return event_type


@dataclass(frozen=True)
class Event:
    """An event of a tenant, to be recorded with the change it announces."""

    tenant_id: str
    event_type: str
    data: Mapping[str, Any] | BaseModel
    """The payload: a resource's schema (as the API shows it), or a JSON mapping."""

    def payload(self) -> dict[str, Any]:
        if isinstance(self.data, BaseModel):
            return self.data.model_dump(mode="json")
        return dict(self.data)


def emit(session: Session, *, tenant_id: str, event_type: str, data: dict[str, Any]) -> str:
    """Record an event of the tenant in the caller's transaction; returns its id (`evt_...`).

    `data` must be JSON; datetimes and decimals are written as ISO strings and decimal strings.
    """
    (event_id,) = emit_many(session, [Event(tenant_id, event_type, data)])
    return event_id


def emit_many(session: Session, events: Sequence[Event]) -> list[str]:
    """Record `events` in the caller's transaction with one statement, in order; their ids."""
    for event in events:
        registered(event.event_type)
    if not events:
        return []
    event_ids = [new_id(EVENT_PREFIX) for _ in events]
    rows = [
        {
            "event_id": event_id,
            "tenant_id": event.tenant_id,
            "event_type": event.event_type,
            "payload": event.payload(),
        }
        for event_id, event in zip(event_ids, events, strict=True)
    ]
    document = json.dumps(rows, default=_json_value, separators=(",", ":"))
    repository.insert_events(session, document)
    return event_ids


def _json_value(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"an event's data cannot hold a {type(value).__name__}")
