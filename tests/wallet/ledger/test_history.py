"""A wallet's history read from the ledger: newest first, in slices that cover it once."""

from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from wallet.database import unit_of_work
from wallet.ledger import service as ledger
from wallet.ledger.repository import HistoryEntry, HistoryFilter, PostingKey, wallet_history
from wallet.ledger.service import Posting, Reason, TransactionRequest


def read_in_slices(
    sessions: sessionmaker[Session], wallet_id: str, history_filter: HistoryFilter, size: int
) -> list[HistoryEntry]:
    entries: list[HistoryEntry] = []
    after: PostingKey | None = None
    while True:
        with unit_of_work(sessions) as session:
            found = wallet_history(session, wallet_id, history_filter, after=after, limit=size)
        entries += found
        if len(found) < size:
            return entries
        after = found[-1].key


def test_slices_cover_a_wallets_history_once_newest_first(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    usd = factory.fund(alice, "USD", 1_000)
    eur = factory.fund(alice, "EUR", 500)
    bob_usd, bob_eur = factory.account(bob, "USD"), factory.account(bob, "EUR")
    with unit_of_work(sessions) as session:
        for amount in (1, 2, 3):
            ledger.post(
                session,
                TransactionRequest(
                    reason=Reason.TRANSFER,
                    postings=[Posting(usd, -amount), Posting(bob_usd, amount)],
                    metadata={"memo": f"#{amount}", "app": {"n": amount}, "internal": True},
                ),
            )
            ledger.post(
                session,
                TransactionRequest(
                    reason=Reason.TRANSFER,
                    postings=[Posting(eur, -amount), Posting(bob_eur, amount)],
                ),
            )

    whole = read_in_slices(sessions, alice, HistoryFilter(), size=100)
    assert len(whole) == 8
    keys = [entry.key for entry in whole]
    assert keys == sorted(
        keys, key=lambda k: (k.created_at, k.account_id, k.account_version), reverse=True
    )
    for size in (1, 2, 3):
        assert read_in_slices(sessions, alice, HistoryFilter(), size=size) == whole

    dollars = read_in_slices(sessions, alice, HistoryFilter(asset="USD"), size=2)
    assert [(e.amount, e.balance_after) for e in dollars] == [
        (-3, 994),
        (-2, 997),
        (-1, 999),
        (1_000, 1_000),
    ]
    assert [(e.reason, e.memo, e.metadata) for e in dollars[:1]] == [("transfer", "#3", {"n": 3})]
    assert (dollars[-1].memo, dollars[-1].metadata) == (None, {})
