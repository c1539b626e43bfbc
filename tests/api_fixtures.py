"""A real uvicorn process serving the API on the test database, and tenants with API keys."""

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from wallet.apikeys.models import Scope
from wallet.apikeys.service import create_key
from wallet.assets.service import Catalogue
from wallet.database import unit_of_work

ALL_SCOPES = tuple(Scope)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_api(
    database_url: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """`uvicorn wallet.api.main:build` on the database, as a process; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "WALLET_DATABASE_URL": database_url,
        "WALLET_DATA_DIR": str(data_dir),
        "WALLET_DATABASE_POOL_SIZE": "20",
        "WALLET_DEV_MNEMONIC": "test test test test test test test test test test test junk",
        # The fake bank, in the API process: the fiat routes answer without a bank to talk to.
        "WALLET_BANK_PROVIDER": "memory",
        "WALLET_BANK_WEBHOOK_SECRET": "whsec_" + base64.b64encode(os.urandom(32)).decode(),
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "uvicorn", "wallet.api.main:build", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    log_path = data_dir / "uvicorn.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(server, url, log_path)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="session")
def api_url(
    database_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The base URL of the API serving the migrated test database."""
    with running_api(database_url, tmp_path_factory.mktemp("api")) as url:
        yield url


def _wait_until_ready(server: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not become ready:\n{log_path.read_text()}")


def issue_key(sessions: sessionmaker[Session], tenant_id: str, *scopes: Scope) -> str:
    with unit_of_work(sessions) as session:
        return create_key(session, tenant_id, scopes, label="test").secret


@dataclass
class ApiTenant:
    """A tenant of its own, with wallets from its factory and a client holding an all-scopes key."""

    factory: Factory
    client: httpx.Client
    url: str

    @property
    def tenant_id(self) -> str:
        return self.factory.tenant_id

    def client_with(self, *scopes: Scope) -> httpx.Client:
        """A new client (close it) whose key has only `scopes`."""
        return bearer_client(self.url, issue_key(self.factory.sessions, self.tenant_id, *scopes))


def bearer_client(url: str, secret: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)


def _api_tenant(url: str, sessions: sessionmaker[Session], catalogue: Catalogue) -> ApiTenant:
    factory = Factory(sessions, catalogue)
    secret = issue_key(sessions, factory.tenant_id, *ALL_SCOPES)
    return ApiTenant(factory=factory, client=bearer_client(url, secret), url=url)


@pytest.fixture
def tenant(
    api_url: str, sessions: sessionmaker[Session], catalogue: Catalogue
) -> Iterator[ApiTenant]:
    api_tenant = _api_tenant(api_url, sessions, catalogue)
    with api_tenant.client:
        yield api_tenant


@pytest.fixture
def other_tenant(
    api_url: str, sessions: sessionmaker[Session], catalogue: Catalogue
) -> Iterator[ApiTenant]:
    api_tenant = _api_tenant(api_url, sessions, catalogue)
    with api_tenant.client:
        yield api_tenant
