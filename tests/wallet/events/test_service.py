"""The outbox: an event is a row of the caller's transaction, and nothing else."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from wallet.database import unit_of_work
from wallet.events.errors import UnknownEventType
from wallet.events.service import Event, emit, emit_many


def outbox_rows(sessions: sessionmaker[Session], tenant_id: str) -> list[dict[str, object]]:
    with unit_of_work(sessions) as session:
        rows = session.execute(
            text(
                "SELECT event_id, event_type, payload, relayed_at FROM outbox "
                "WHERE tenant_id = :tenant ORDER BY id"
            ),
            {"tenant": tenant_id},
        ).mappings()
        return [dict(row) for row in rows]


def test_an_event_is_written_with_the_transaction_that_commits_it(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    with unit_of_work(sessions) as session:
        event_id = emit(
            session,
            tenant_id=factory.tenant_id,
            event_type="transfer.created",
            data={"id": "trf_1", "amount": "1.50", "asset": "USD"},
        )
        assert outbox_rows(sessions, factory.tenant_id) == []  # not visible before commit
    assert event_id.startswith("evt_") and len(event_id) == 30
    assert outbox_rows(sessions, factory.tenant_id) == [
        {
            "event_id": event_id,
            "event_type": "transfer.created",
            "payload": {"id": "trf_1", "amount": "1.50", "asset": "USD"},
            "relayed_at": None,
        }
    ]


def test_a_rolled_back_transaction_emits_nothing(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    class Refused(Exception):
        pass

    with pytest.raises(Refused), unit_of_work(sessions) as session:
        emit(session, tenant_id=factory.tenant_id, event_type="transfer.created", data={})
        raise Refused
    assert outbox_rows(sessions, factory.tenant_id) == []


def test_an_unregistered_event_type_is_a_programming_error(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    with pytest.raises(UnknownEventType), unit_of_work(sessions) as session:
        emit(session, tenant_id=factory.tenant_id, event_type="transfer.teleported", data={})


def test_data_must_be_json_with_dates_and_decimals_written_as_strings(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    with unit_of_work(sessions) as session:
        emit(
            session,
            tenant_id=factory.tenant_id,
            event_type="deposit.seen",
            data={"at": datetime(2025, 1, 2, tzinfo=UTC), "amount": Decimal("0.10")},
        )
    (row,) = outbox_rows(sessions, factory.tenant_id)
    assert row["payload"] == {"at": "2025-01-02T00:00:00+00:00", "amount": "0.10"}
    with pytest.raises(TypeError), unit_of_work(sessions) as session:
        emit(session, tenant_id=factory.tenant_id, event_type="deposit.seen", data={"x": {1, 2}})


def test_a_batch_of_events_is_written_in_its_order_by_one_statement(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    other = Factory(sessions, factory.catalogue)
    events = [
        Event(factory.tenant_id if i % 3 else other.tenant_id, "deposit.seen", {"n": i})
        for i in range(50)
    ]
    statements: list[str] = []

    def record(conn: Connection, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    with unit_of_work(sessions) as session:
        connection = session.connection()
        event.listen(connection, "before_cursor_execute", record)
        event_ids = emit_many(session, events)
        event.remove(connection, "before_cursor_execute", record)
    assert len(statements) == 1
    assert len(set(event_ids)) == 50 and all(e.startswith("evt_") for e in event_ids)
    mine = outbox_rows(sessions, factory.tenant_id)
    assert [row["payload"] for row in mine] == [{"n": i} for i in range(50) if i % 3]
    assert [row["event_id"] for row in mine] == [e for i, e in enumerate(event_ids) if i % 3]
    assert [row["payload"] for row in outbox_rows(sessions, other.tenant_id)] == [
        {"n": i} for i in range(0, 50, 3)
    ]


def test_a_batch_with_an_unregistered_event_type_writes_nothing(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    events = [
        Event(factory.tenant_id, "deposit.seen", {}),
        Event(factory.tenant_id, "deposit.teleported", {}),
    ]
    with pytest.raises(UnknownEventType), unit_of_work(sessions) as session:
        emit_many(session, events)
    with unit_of_work(sessions) as session:
        assert emit_many(session, []) == []
    assert outbox_rows(sessions, factory.tenant_id) == []
