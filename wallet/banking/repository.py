"""Queries of the bank side: provider events stored once by id, the provider's ledger accounts."""

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, text
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


# One statement, so one snapshot: the provider's payments as our records have them, the
# ledger's `bank:<provider>` balances, and that account's entries that belong to no payment.
_LEDGER_SIDE = text(
    """
    WITH bank AS (SELECT id, asset, posted FROM accounts WHERE system_name = :name)
    SELECT 'payin' AS kind, id, asset, amount, status, provider_version AS version, created_at
    FROM payins WHERE provider = :provider
    UNION ALL
    SELECT 'payout', id, asset, amount, status, provider_version, created_at
    FROM payouts WHERE provider = :provider
    UNION ALL
    SELECT 'balance', NULL, asset, -posted, NULL, NULL, NULL FROM bank
    UNION ALL
    SELECT 'entry', t.id::text, b.asset, -p.amount, t.reason, NULL, t.created_at
    FROM bank b
    JOIN postings p ON p.account_id = b.id
    JOIN ledger_transactions t ON t.id = p.transaction_id
    LEFT JOIN ledger_transactions r ON r.id = t.reverses_id
    WHERE coalesce(t.external_kind, r.external_kind, '') NOT IN ('payin', 'payout')
    """
)


@dataclass(frozen=True)
class LedgerSide:
    """What our records say the provider holds for us, read in one snapshot."""

    payments: list[Row[Any]]
    """Pay-ins and payouts: kind, id, asset, amount, status, version, created_at."""
    balances: dict[str, int]
    """The ledger's balance of `bank:<provider>` per currency, as the provider's side."""
    entries: list[Row[Any]]
    """Entries of `bank:<provider>` from no pay-in or payout: id, asset, amount, status
    (the transaction's reason), created_at."""


def ledger_side(session: Session, provider: str) -> LedgerSide:
    rows = session.execute(
        _LEDGER_SIDE, {"provider": provider, "name": bank_account_name(provider)}
    ).all()
    return LedgerSide(
        payments=[row for row in rows if row.kind in ("payin", "payout")],
        balances={row.asset: int(row.amount) for row in rows if row.kind == "balance"},
        entries=[row for row in rows if row.kind == "entry"],
    )
