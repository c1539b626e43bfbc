"""The API on the test database, and tenants with API keys.

Most tests reach the app in this process (`api`) through httpx's ASGI transport, on an event
loop of its own as under uvicorn, with its lifespan run: no server process to start, and
what the requests run is measured by coverage in the test process. Tests that need a socket
(raw HTTP, a client in another process) use a real uvicorn process (`api_url`).
"""

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp

from chains.devnet import find_free_port
from tests.factories import Factory
from wallet.api import KEEP_ALIVE_SECONDS
from wallet.api.app import create_app
from wallet.apikeys.models import Scope
from wallet.apikeys.service import create_key
from wallet.assets.service import Catalogue
from wallet.database import unit_of_work
from wallet.runtime import build_runtime
from wallet.settings import Settings

ALL_SCOPES = tuple(Scope)


def free_port() -> int:
    return find_free_port()


def api_environment(database_url: str, data_dir: Path) -> dict[str, str]:
    """The API's settings for tests, as `WALLET_*` variables."""
    return {
        "WALLET_DATABASE_URL": database_url,
        "WALLET_DATA_DIR": str(data_dir),
        "WALLET_DATABASE_POOL_SIZE": "20",
        "WALLET_DEV_MNEMONIC": "test test test test test test test test test test test junk",
        # The fake bank, in the API process: the fiat routes answer without a bank to talk to.
        "WALLET_BANK_PROVIDER": "memory",
        "WALLET_BANK_WEBHOOK_SECRET": "whsec_" + base64.b64encode(os.urandom(32)).decode(),
    }


class InProcessTransport(httpx.BaseTransport):
    """httpx's ASGI transport for synchronous clients: each request runs on the app's event
    loop (one for all clients, as under uvicorn); an unhandled error answers 500."""

    def __init__(self, app: ASGIApp, portal: BlockingPortal) -> None:
        self._asgi = httpx.ASGITransport(app, raise_app_exceptions=False)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def exchange() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return self._portal.call(exchange)


@dataclass(frozen=True)
class Api:
    """Where tests reach the API: a server at a base URL, or the app in this process."""

    url: str
    transport: httpx.BaseTransport | None = None

    def client(self, secret: str | None = None) -> httpx.Client:
        """A new client (close it), with `secret` as its bearer key if given."""
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(
            base_url=self.url, headers=headers, transport=self.transport, timeout=30
        )


@pytest.fixture(scope="session")
def api(
    database_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """The API app in this process, on the migrated test database."""
    environment = api_environment(database_url, tmp_path_factory.mktemp("api"))
    settings = Settings(**{k.removeprefix("WALLET_").lower(): v for k, v in environment.items()})
    runtime = build_runtime(settings)
    app = create_app(runtime)
    try:
        with (
            start_blocking_portal() as portal,
            portal.wrap_async_context_manager(app.router.lifespan_context(app)),
        ):
            yield Api(url="http://api.test", transport=InProcessTransport(app, portal))
    finally:
        runtime.engine.dispose()


@contextmanager
def running_api(
    database_url: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """`uvicorn wallet.api.main:build` on the database, as a process; yields its base URL."""
    port = free_port()
    env = {**os.environ, **api_environment(database_url, data_dir), **(extra_env or {})}
    command = [sys.executable, "-m", "uvicorn", "wallet.api.main:build", "--factory"]
    command += ["--timeout-keep-alive", str(KEEP_ALIVE_SECONDS)]
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
    """The base URL of a uvicorn process serving the migrated test database."""
    with running_api(database_url, tmp_path_factory.mktemp("api")) as url:
        yield url


def _wait_until_ready(server: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{log_path.read_text()}")
        try:
            # A loaded machine (and coverage's tracing) may make an answer slow, not absent.
            if httpx.get(f"{url}/readyz", timeout=10).status_code == 200:
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
    api: Api

    @property
    def tenant_id(self) -> str:
        return self.factory.tenant_id

    @property
    def url(self) -> str:
        return self.api.url

    def client_with(self, *scopes: Scope) -> httpx.Client:
        """A new client (close it) whose key has only `scopes`."""
        return self.api.client(issue_key(self.factory.sessions, self.tenant_id, *scopes))


def bearer_client(url: str, secret: str) -> httpx.Client:
    """A client of the API served at `url`."""
    return Api(url).client(secret)


def _api_tenant(api: Api | str, sessions: sessionmaker[Session], catalogue: Catalogue) -> ApiTenant:
    """A tenant on `api` (the app, or the URL of a server)."""
    api = api if isinstance(api, Api) else Api(api)
    factory = Factory(sessions, catalogue)
    secret = issue_key(sessions, factory.tenant_id, *ALL_SCOPES)
    return ApiTenant(factory=factory, client=api.client(secret), api=api)


def _open_tenant(
    api: Api | str, sessions: sessionmaker[Session], catalogue: Catalogue
) -> Iterator[ApiTenant]:
    api_tenant = _api_tenant(api, sessions, catalogue)
    with api_tenant.client:
        yield api_tenant


@pytest.fixture
def tenant(api: Api, sessions: sessionmaker[Session], catalogue: Catalogue) -> Iterator[ApiTenant]:
    yield from _open_tenant(api, sessions, catalogue)


@pytest.fixture
def other_tenant(
    api: Api, sessions: sessionmaker[Session], catalogue: Catalogue
) -> Iterator[ApiTenant]:
    yield from _open_tenant(api, sessions, catalogue)


@pytest.fixture
def served_tenant(
    api_url: str, sessions: sessionmaker[Session], catalogue: Catalogue
) -> Iterator[ApiTenant]:
    """A tenant on the API under uvicorn, for tests that speak HTTP over a socket."""
    yield from _open_tenant(api_url, sessions, catalogue)
