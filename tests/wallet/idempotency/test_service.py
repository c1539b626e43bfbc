"""Idempotency keys: replays, conflicts and concurrent duplicates."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from wallet.database import run_transaction, unit_of_work
from wallet.idempotency.errors import IdempotencyConflict
from wallet.idempotency.service import IdempotencyKey, Outcome, run_once
from wallet.ledger.errors import InsufficientFunds
from wallet.ledger.repository import user_account
from wallet.ledger.service import Posting, Reason, TransactionRequest, post
from wallet.transfers.service import TransferRequest
from wallet.withdrawals.errors import FeeQuoteUnavailable


def idempotent_move(sessions: sessionmaker[Session], key: str, request: TransferRequest) -> Outcome:
    """Move money between the request's wallets with a ledger posting, once per key."""
    body = {
        "source": request.source_wallet_id,
        "destination": request.destination_wallet_id,
        "asset": request.asset,
        "amount": request.amount,
    }
    idempotency = IdempotencyKey.for_request(request.tenant_id, key, body)

    def work(session: Session) -> Outcome:
        def action() -> dict[str, Any]:
            source = user_account(session, request.source_wallet_id, request.asset)
            destination = user_account(session, request.destination_wallet_id, request.asset)
            lines = [Posting(source, -request.amount), Posting(destination, request.amount)]
            return {"transaction": post(session, TransactionRequest(Reason.ADJUSTMENT, lines))}

        return run_once(session, idempotency, action)

    return run_transaction(sessions, work)


def transfers_between(sessions: sessionmaker[Session], source_account: int) -> int:
    with unit_of_work(sessions) as session:
        return int(
            session.execute(
                text("SELECT count(*) FROM postings WHERE account_id = :a AND amount < 0"),
                {"a": source_account},
            ).scalar_one()
        )


def test_a_replay_returns_the_first_result(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    account = factory.fund(alice, "USD", 100)
    request = TransferRequest(factory.tenant_id, alice, bob, "USD", 60)
    first = idempotent_move(sessions, "k1", request)
    again = idempotent_move(sessions, "k1", request)
    assert again.replayed and not first.replayed
    assert again.unwrap() == first.unwrap()
    assert transfers_between(sessions, account) == 1


def test_a_failure_is_replayed_too(factory: Factory, sessions: sessionmaker[Session]) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    factory.fund(alice, "USD", 10)
    request = TransferRequest(factory.tenant_id, alice, bob, "USD", 60)
    with pytest.raises(InsufficientFunds):
        idempotent_move(sessions, "k-fail", request).unwrap()
    factory.fund(alice, "USD", 100)
    replay = idempotent_move(sessions, "k-fail", request)
    assert replay.replayed
    with pytest.raises(InsufficientFunds):
        replay.unwrap()


def test_the_same_key_with_another_request_conflicts(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    factory.fund(alice, "USD", 100)
    idempotent_move(sessions, "k2", TransferRequest(factory.tenant_id, alice, bob, "USD", 1))
    with pytest.raises(IdempotencyConflict):
        idempotent_move(sessions, "k2", TransferRequest(factory.tenant_id, alice, bob, "USD", 2))


@pytest.mark.committed
def test_concurrent_calls_with_one_key_make_one_transaction(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    account = factory.fund(alice, "USD", 1_000)
    request = TransferRequest(factory.tenant_id, alice, bob, "USD", 7)
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: idempotent_move(sessions, "k3", request), range(16)))
    assert len({str(outcome.unwrap()) for outcome in outcomes}) == 1
    assert sum(not outcome.replayed for outcome in outcomes) == 1
    assert transfers_between(sessions, account) == 1


def test_a_service_error_is_not_kept_so_a_retry_tries_again(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    key = IdempotencyKey.for_request(factory.tenant_id, "k-unavailable", {"a": 1})

    def unavailable() -> dict[str, Any]:
        raise FeeQuoteUnavailable("the node did not answer")

    with pytest.raises(FeeQuoteUnavailable):
        run_transaction(sessions, lambda session: run_once(session, key, unavailable))
    retried = run_transaction(sessions, lambda session: run_once(session, key, lambda: {"ok": 1}))

    assert (retried.value, retried.replayed) == ({"ok": 1}, False)
