"""The embedded profile: PostgreSQL from PyPI, same migrations, same ledger."""

from pathlib import Path

from tests.factories import Factory
from wallet.assets.service import Catalogue, store_catalogue
from wallet.database import make_engine, make_session_factory, migrate, unit_of_work
from wallet.embedded_postgres import start_embedded_postgres
from wallet.ledger.reconcile import check_ledger
from wallet.transfers.service import TransferRequest


def test_the_embedded_server_runs_the_whole_ledger(tmp_path: Path, catalogue: Catalogue) -> None:
    engine = make_engine(start_embedded_postgres(tmp_path))
    try:
        migrate(engine)
        sessions = make_session_factory(engine)
        with unit_of_work(sessions) as session:
            store_catalogue(session, catalogue)
        factory = Factory(sessions, catalogue)
        alice, bob = factory.wallet(), factory.wallet()
        factory.fund(alice, "USD", 1_000)
        made = factory.transfer(TransferRequest(factory.tenant_id, alice, bob, "USD", 250))
        assert made["amount"] == "2.50"
        with unit_of_work(sessions) as session:
            assert all(check.ok for check in check_ledger(session))
    finally:
        engine.dispose()
