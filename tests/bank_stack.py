"""The fiat stack under test: the API (uvicorn) and the sandbox bank, two real processes that
talk over HTTP both ways, on the test database; a Celery worker for the periodic jobs."""

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from fiat.sandbox import Options, SandboxControl, SandboxProcess, Timings, start_sandbox
from tests.api_fixtures import bearer_client, issue_key, running_api
from tests.factories import Factory
from tests.webhook_fixtures import WEBHOOK_JOBS_OFF, CeleryProcesses, free_port, wait_until
from wallet.apikeys.models import Scope
from wallet.assets.service import Catalogue
from wallet.database import unit_of_work

BANK_KEY = "sk_sandbox_wallet_test"
BANK_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
# A chargeback comes late enough for a test to spend the money first.
TIMINGS = Timings(processing=0.05, settle=0.1, returned=0.3, chargeback=3.0)


def bank_environment(sandbox_port: int) -> dict[str, str]:
    return {
        "WALLET_BANK_PROVIDER": "sandbox",
        "WALLET_BANK_URL": f"http://127.0.0.1:{sandbox_port}",
        "WALLET_BANK_API_KEY": BANK_KEY,
        "WALLET_BANK_WEBHOOK_SECRET": BANK_SECRET,
        "WALLET_BANK_TIMEOUT": "1",
        "WALLET_PAYIN_TURN_WAIT": "0.5",
        "WALLET_BANK_RESOLVE_INTERVAL": "0.3",
        "WALLET_BANK_RESOLVE_AFTER": "0.5",
        "WALLET_FIAT_FEES": json.dumps(
            {
                "payin": {"USD": {"fixed": 25, "bps": 50}, "EUR": {"fixed": 10}},
                "payout": {"USD": {"fixed": 100}, "EUR": {"fixed": 100}},
            }
        ),
    }


@dataclass
class FiatStack:
    api_url: str
    webhook_url: str
    sandbox: SandboxProcess
    control: SandboxControl
    environment: dict[str, str]

    def normal(self) -> None:
        """The sandbox behaves and sends its webhooks to the API."""
        self.control.configure(
            webhook_url=self.webhook_url,
            outage="none",
            duplicate_webhooks=False,
            reverse_webhooks=False,
            webhook_hold=0.0,
            webhook_batch=Options().webhook_batch,
        )


@pytest.fixture(scope="session")
def fiat_stack(
    database_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FiatStack]:
    directory = tmp_path_factory.mktemp("fiat")
    sandbox_port = free_port()
    environment = bank_environment(sandbox_port)
    with running_api(database_url, directory, environment) as api_url:
        webhook_url = f"{api_url}/v1/fiat/webhooks/sandbox"
        options = Options(
            data_path=directory / "bank.sqlite3",
            port=sandbox_port,
            api_keys=(BANK_KEY,),
            webhook_url=webhook_url,
            webhook_secret=BANK_SECRET,
            timings=TIMINGS,
            tick=0.02,
            webhook_timeout=5.0,
            webhook_retry_base=0.05,
            webhook_retry_max=0.5,
        )
        sandbox = start_sandbox(options)
        control = SandboxControl(options.url, BANK_KEY)
        try:
            yield FiatStack(api_url, webhook_url, sandbox, control, environment)
        finally:
            control.close()
            sandbox.stop()


@pytest.fixture
def stack(fiat_stack: FiatStack) -> Iterator[FiatStack]:
    fiat_stack.normal()
    yield fiat_stack
    fiat_stack.normal()


@dataclass
class FiatTenant:
    """A tenant of its own with a wallet, and a client holding an all-scopes key."""

    factory: Factory
    client: httpx.Client
    wallet: str
    stack: FiatStack

    def link(self, currency: str = "USD", account_number: str = "DE0012345678") -> str:
        response = self.client.post(
            "/v1/bank-accounts",
            json={
                "wallet_id": self.wallet,
                "holder_name": "Ada Lovelace",
                "account_number": account_number,
                "currency": currency,
                "country": "DE",
            },
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def payin(self, amount: str, currency: str = "USD", key: str | None = None) -> httpx.Response:
        body = {
            "wallet_id": self.wallet,
            "bank_account_id": self.link(currency),
            "asset": currency,
            "amount": amount,
        }
        return self.client.post(
            "/v1/payins", json=body, headers={"Idempotency-Key": key or os.urandom(8).hex()}
        )

    def wait_status(self, payin_id: str, status: str, timeout: float = 15) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def reached() -> bool:
            found.update(self.client.get(f"/v1/payins/{payin_id}").json())
            return found["status"] == status

        wait_until(reached, timeout=timeout)
        return found

    def balance(self, asset: str = "USD") -> dict[str, str]:
        balances = self.client.get(f"/v1/wallets/{self.wallet}/balances").json()["balances"]
        return next(b for b in balances if b["asset"] == asset)

    def events(self, payin_id: str) -> list[str]:
        """The `payin.*` event types of the pay-in in the outbox, in order."""
        with unit_of_work(self.factory.sessions) as session:
            rows = session.execute(
                text("SELECT event_type FROM outbox WHERE payload ->> 'id' = :id ORDER BY id"),
                {"id": payin_id},
            )
            return [row.event_type for row in rows]


@pytest.fixture
def fiat_tenant(
    stack: FiatStack, sessions: sessionmaker[Session], catalogue: Catalogue
) -> Iterator[FiatTenant]:
    factory = Factory(sessions, catalogue)
    client = bearer_client(stack.api_url, issue_key(sessions, factory.tenant_id, *tuple(Scope)))
    with client:
        yield FiatTenant(factory, client, factory.wallet(), stack)


@pytest.fixture(scope="module")
def worker(
    fiat_stack: FiatStack,
    database_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CeleryProcesses]:
    """A Celery worker and beat with the bank settings: the periodic jobs sending payouts and
    resolving unknowns, every half second; neither the webhook jobs nor the broadcaster."""
    relaxed = {
        **WEBHOOK_JOBS_OFF,
        "WALLET_WITHDRAWAL_BROADCAST_INTERVAL": "3600",
        "WALLET_BANK_RESOLVE_INTERVAL": "0.5",
    }
    extra_env = {**fiat_stack.environment, **relaxed}
    processes = CeleryProcesses(
        database_url, redis_url, tmp_path_factory.mktemp("celery"), extra_env
    )
    processes.start()
    yield processes
    processes.stop()
