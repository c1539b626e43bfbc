"""The batch lookup of wallet accounts a watcher step uses (`wallet.ledger.repository`)."""

import threading

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from wallet.database import unit_of_work
from wallet.ledger.repository import user_account, user_accounts


def test_accounts_are_found_or_created_for_many_wallets_at_once(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    wallets = [factory.wallet() for _ in range(3)]
    existing = factory.account(wallets[0], "ETH")
    keys = [(w, a) for w in wallets for a in ("ETH", "USDC")]
    with unit_of_work(sessions) as session:
        first = user_accounts(session, [*keys, *keys])
    with unit_of_work(sessions) as session:
        again = user_accounts(session, keys)
        one = user_account(session, wallets[2], "USDC")
    assert set(first) == set(keys) and len(set(first.values())) == 6
    assert first[(wallets[0], "ETH")] == existing
    assert again == first and one == first[(wallets[2], "USDC")]


@pytest.mark.committed
def test_a_concurrent_first_use_is_read_back_not_created_twice(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    contested, other = factory.wallet(), factory.wallet()
    found: dict[tuple[str, str], int] = {}
    with unit_of_work(sessions) as first:
        theirs = user_account(first, contested, "ETH")  # inserted, not committed yet

        def look_up() -> None:
            with unit_of_work(sessions) as session:
                found.update(user_accounts(session, [(contested, "ETH"), (other, "ETH")]))

        racer = threading.Thread(target=look_up)
        racer.start()
        racer.join(timeout=0.5)
        assert racer.is_alive()  # waiting on the row the first transaction inserted
    racer.join(timeout=10)

    assert found[(contested, "ETH")] == theirs
    assert (other, "ETH") in found
