"""The ledger's write path refuses amounts that are not whole numbers of the smallest unit,
whoever calls it: a fraction would be rounded where it is stored, not in the balances."""

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import FUNDING_ACCOUNT, Factory
from wallet.database import unit_of_work
from wallet.ledger.errors import ErrorCode
from wallet.ledger.reconcile import check_ledger
from wallet.ledger.repository import balance, system_account


def ledger_apply(
    sessions: sessionmaker[Session], transactions: list[dict[str, Any]], *, atomic: bool
) -> dict[str, Any]:
    with unit_of_work(sessions) as session:
        answer: dict[str, Any] = session.execute(
            text("SELECT ledger_apply(CAST(:transactions AS jsonb), :atomic)"),
            {"transactions": json.dumps(transactions), "atomic": atomic},
        ).scalar_one()
        return answer


def new_account_and_bank(factory: Factory, sessions: sessionmaker[Session]) -> tuple[int, int]:
    """A new wallet's USD account, and the test bank's."""
    alice = factory.account(factory.wallet(), "USD")
    with unit_of_work(sessions) as session:
        return alice, system_account(session, FUNDING_ACCOUNT, "USD")


def test_fractional_postings_are_refused_and_the_balances_keep_to_the_postings(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice, bank = new_account_and_bank(factory, sessions)
    # Each posting would be stored rounded (1, 1, -1, -1: balanced), alice's balance as 1.
    halves = {
        "reason": "adjustment",
        "postings": [[bank, "-0.5"], [bank, "-0.5"], [alice, "0.5"], [alice, "0.5"]],
    }
    whole = {"reason": "adjustment", "postings": [[bank, "-2"], [alice, "2"]]}

    answer = ledger_apply(sessions, [halves, whole], atomic=False)

    refused, made = answer["results"]
    assert refused == {"ok": False, "error": ErrorCode.FRACTIONAL_AMOUNT}
    assert made["ok"]
    with unit_of_work(sessions) as session:
        assert balance(session, alice).posted == 2
        assert balance(session, alice).version == 1
        assert all(check.violations == [] for check in check_ledger(session))


def test_a_fractional_posting_fails_an_atomic_call_whole(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice, bank = new_account_and_bank(factory, sessions)
    answer = ledger_apply(
        sessions,
        [
            {"reason": "adjustment", "postings": [[bank, "-2"], [alice, "2"]]},
            {"reason": "adjustment", "postings": [[bank, "-0.25"], [alice, "0.25"]]},
        ],
        atomic=True,
    )
    assert (answer["ok"], answer["failed_item"]) == (False, 2)
    with unit_of_work(sessions) as session:
        assert balance(session, alice).version == 0
