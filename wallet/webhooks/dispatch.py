"""The relay: committed outbox rows become webhook deliveries, handed to the workers.

Each batch is one transaction: lock unrelayed rows (SKIP LOCKED, so relays may run side by
side), create their deliveries, mark them relayed, commit. Only then are deliver tasks sent; if
the broker is down the deliveries wait in the database for the sweep, so nothing is lost.
"""

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from wallet.database import run_transaction
from wallet.webhooks.delivery import EventRef, SendDelivery, create_deliveries, hand_over


@dataclass(frozen=True)
class RelayReport:
    events: int
    deliveries: int
    handed_over: int


def relay_outbox(
    sessions: sessionmaker[Session],
    send: SendDelivery,
    *,
    batch_size: int = 200,
    max_batches: int = 10,
) -> RelayReport:
    """Relay up to `max_batches` batches of committed events; the rest wait for the next run."""
    events = deliveries = handed_over = 0
    for _ in range(max_batches):
        batch_events, created = run_transaction(
            sessions, lambda session: _relay_batch(session, batch_size)
        )
        events += batch_events
        deliveries += len(created)
        handed_over += hand_over(sessions, created, send)
        if batch_events < batch_size:
            break
    return RelayReport(events=events, deliveries=deliveries, handed_over=handed_over)


def _relay_batch(session: Session, batch_size: int) -> tuple[int, list[str]]:
    rows = session.execute(
        text(
            """
            SELECT id, event_id, tenant_id, event_type FROM outbox
            WHERE relayed_at IS NULL
            ORDER BY id
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
            """
        ),
        {"limit": batch_size},
    ).all()
    if not rows:
        return 0, []
    created = create_deliveries(
        session, [EventRef(row.event_id, row.tenant_id, row.event_type) for row in rows]
    )
    session.execute(
        text("UPDATE outbox SET relayed_at = now() WHERE id = ANY(:ids)"),
        {"ids": [row.id for row in rows]},
    )
    return len(rows), created
