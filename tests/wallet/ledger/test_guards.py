"""The database itself refuses what would break the ledger, whatever SQL is sent."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from wallet.database import unit_of_work


def posting_of(factory: Factory) -> int:
    """The account of a wallet's only posting (its version 1)."""
    return factory.fund(factory.wallet(), "USD", 100)


def test_an_unbalanced_transaction_is_rejected(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice = factory.fund(factory.wallet(), "USD", 100)
    with pytest.raises(DBAPIError, match="does not balance"), unit_of_work(sessions) as session:
        session.execute(
            text(
                "WITH t AS (INSERT INTO ledger_transactions (reason) VALUES ('adjustment') "
                "RETURNING id) INSERT INTO postings "
                "(transaction_id, account_id, asset, amount, account_version, posted_after) "
                "SELECT id, :a, 'USD', 5, 2, 105 FROM t"
            ),
            {"a": alice},
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE postings SET amount = amount * 2 WHERE account_id = :id",
        "DELETE FROM postings WHERE account_id = :id",
        "UPDATE ledger_transactions SET reason = 'x' "
        "WHERE id = (SELECT transaction_id FROM postings WHERE account_id = :id)",
        "DELETE FROM ledger_transactions "
        "WHERE id = (SELECT transaction_id FROM postings WHERE account_id = :id)",
    ],
)
def test_postings_and_transactions_are_append_only(
    factory: Factory, sessions: sessionmaker[Session], statement: str
) -> None:
    posting = posting_of(factory)
    with pytest.raises(DBAPIError, match="append-only"), unit_of_work(sessions) as session:
        session.execute(text(statement), {"id": posting})


def test_truncate_is_rejected(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(DBAPIError, match="append-only"), unit_of_work(sessions) as session:
        session.execute(text("TRUNCATE postings"))


def test_a_user_balance_cannot_be_set_below_zero(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice = factory.fund(factory.wallet(), "USD", 100)
    with (
        pytest.raises(DBAPIError, match="available_not_negative"),
        unit_of_work(sessions) as session,
    ):
        session.execute(text("UPDATE accounts SET posted = -1 WHERE id = :a"), {"a": alice})
