"""Withdrawals end to end: requested over HTTP (uvicorn), sent by a real Celery worker on
Redis, confirmed by the watcher's step, on a fresh Anvil node; and a worker killed with
SIGKILL between signing and sending, or between sending and recording."""

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from chains import account_nonces
from custody import MasterSeed, hot_wallet_key
from tests.api_fixtures import ApiTenant, running_api
from tests.api_fixtures import _api_tenant as api_tenant_of
from tests.wallet.deposits.conftest import (
    CONFIRMATIONS,
    TEST_MNEMONIC,
    settle,
    write_catalogue_file,
)
from tests.wallet.withdrawals.conftest import ETH, USDC, SendingChain, post_withdrawal
from tests.webhook_fixtures import WEBHOOK_JOBS_OFF, CeleryProcesses, wait_until
from wallet.cli import app as cli


class RpcProxy:
    """Forwards JSON-RPC to the node; can hold the next `eth_sendRawTransaction` before or
    after forwarding it, until the test lets it go (and drops it, when held before)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.hold: str | None = None
        """None, "before" (the node never gets it) or "after" (the caller never hears back)."""
        self.held = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                hold = proxy.hold if b"eth_sendRawTransaction" in body else None
                if hold is not None:
                    proxy.hold = None
                if hold == "before":
                    proxy.held.set()
                    proxy.release.wait()
                    self.send_response(502)
                    self.end_headers()
                    return
                reply = httpx.post(
                    proxy.upstream, content=body, headers={"content-type": "application/json"}
                )
                if hold == "after":
                    proxy.held.set()
                    proxy.release.wait()
                self.send_response(reply.status_code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Deployment:
    chain: SendingChain
    proxy: RpcProxy
    celery: CeleryProcesses
    customer: ApiTenant
    api_log: Path

    def logs(self) -> str:
        """Everything the worker, beat and API processes logged."""
        worker, beat = self.celery.log("worker"), self.celery.log("beat")
        return worker + beat + self.api_log.read_text(errors="replace")


@pytest.fixture
def deployment(
    sending_chain: SendingChain,
    database_url: str,
    redis_url: str,
    sessions: sessionmaker[Session],
    tmp_path: Path,
) -> Iterator[Deployment]:
    """The API and a worker with beat, whose node is the fresh devnet behind a proxy."""
    chain = sending_chain
    proxy = RpcProxy(chain.dev.rpc_url)
    env = {
        **WEBHOOK_JOBS_OFF,
        "WALLET_ASSETS_FILE": str(
            write_catalogue_file(chain.live, tmp_path / "assets.toml", proxy.url)
        ),
        "WALLET_WITHDRAWAL_POLICIES": json.dumps({chain.live.token: {"fee_rate": "3000"}}),
        "WALLET_WITHDRAWAL_BROADCAST_INTERVAL": "0.3",
        "WALLET_DEV_MNEMONIC": TEST_MNEMONIC,
    }
    celery = CeleryProcesses(database_url, redis_url, tmp_path)
    celery.env.update(env)
    (tmp_path / "api").mkdir()
    with running_api(database_url, tmp_path / "api", env) as url:
        celery.start()
        customer = api_tenant_of(url, sessions, chain.catalogue)
        try:
            with customer.client:
                yield Deployment(chain, proxy, celery, customer, tmp_path / "api" / "uvicorn.log")
        finally:
            celery.stop()
            proxy.close()


def outside() -> str:
    return "0x" + secrets.token_hex(20)


def status_of(deployment: Deployment, withdrawal_id: str) -> str:
    answer = deployment.customer.client.get(f"/v1/withdrawals/{withdrawal_id}").json()
    return str(answer["status"])


def units(text: str, decimals: int) -> int:
    return int(Decimal(text) * 10**decimals)


def test_eth_and_usdc_withdrawals_end_to_end(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    chain, client = deployment.chain, deployment.customer.client
    watcher = chain.live.watcher()
    settle(watcher)
    wallet = deployment.customer.factory.wallet()
    deployment.customer.factory.fund(wallet, chain.live.native, 2 * ETH)
    deployment.customer.factory.fund(wallet, chain.live.token, 1000 * USDC)
    chain.fund_hot_wallet(10 * ETH, 1000 * USDC)
    eth_to, usdc_to = outside(), outside()
    destination = {"type": "crypto", "chain": chain.live.name}
    requests = [
        (chain.live.native, "0.75", eth_to),
        (chain.live.token, "123.456789", usdc_to),
    ]
    made = []
    for asset, amount, to in requests:
        body = {
            "wallet_id": wallet,
            "asset": asset,
            "amount": amount,
            "destination": destination | {"address": to},
        }
        response = post_withdrawal(client, body)
        assert response.status_code == 201, response.text
        made.append(response.json())

    wait_until(lambda: all(status_of(deployment, w["id"]) == "broadcast" for w in made))
    chain.dev.mine(CONFIRMATIONS)
    settle(watcher)

    done = [client.get(f"/v1/withdrawals/{w['id']}").json() for w in made]
    assert [d["status"] for d in done] == ["confirmed", "confirmed"]
    assert chain.dev.devnet.balance(eth_to) == 75 * ETH // 100
    assert chain.dev.devnet.token_balance(chain.dev.token_address, usdc_to) == 123_456_789
    balances = client.get(f"/v1/wallets/{wallet}/balances").json()["balances"]
    posted = {b["asset"]: (b["posted"], b["pending_out"]) for b in balances}
    eth_fee, usdc_fee = units(made[0]["fee"], 18), units(made[1]["fee"], 6)
    assert units(posted[chain.live.native][0], 18) == 2 * ETH - 75 * ETH // 100 - eth_fee
    assert units(posted[chain.live.token][0], 6) == 1000 * USDC - 123_456_789 - usdc_fee
    assert units(posted[chain.live.native][1], 18) == units(posted[chain.live.token][1], 6) == 0
    monkeypatch.setenv("WALLET_DATABASE_URL", database_url)
    monkeypatch.setenv("WALLET_ASSETS_FILE", deployment.celery.env["WALLET_ASSETS_FILE"])
    monkeypatch.setenv("WALLET_DEV_MNEMONIC", TEST_MNEMONIC)
    reconciled = CliRunner().invoke(cli, ["reconcile"])
    assert reconciled.exit_code == 0, reconciled.output
    assert "FAIL" not in reconciled.output
    assert f"ok   {chain.live.name} {chain.live.native} holdings" in reconciled.output
    seed = MasterSeed.from_mnemonic(TEST_MNEMONIC)
    key = hot_wallet_key(seed, account=chain.live.config.chain_id)
    logs = deployment.logs()
    assert "signed" in logs  # the broadcaster's own lines are there
    for secret in (key.hex(), "0x" + key.hex(), TEST_MNEMONIC, seed.secret.hex()):
        assert secret not in logs


@pytest.mark.parametrize("hold", ["before", "after"])
def test_a_worker_killed_around_the_send_leaves_exactly_one_mined_transaction(
    deployment: Deployment, hold: str
) -> None:
    """`before`: killed after signing, before the node got the transaction; `after`: killed
    after the node got it, before the answer was recorded."""
    chain, proxy = deployment.chain, deployment.proxy
    watcher = chain.live.watcher()
    settle(watcher)
    wallet = deployment.customer.factory.wallet()
    deployment.customer.factory.fund(wallet, chain.live.native, ETH)
    chain.fund_hot_wallet(ETH)
    to = outside()
    proxy.hold = hold
    body = {
        "wallet_id": wallet,
        "asset": chain.live.native,
        "amount": "0.5",
        "destination": {"type": "crypto", "chain": chain.live.name, "address": to},
    }
    withdrawal = post_withdrawal(deployment.customer.client, body).json()["id"]

    assert proxy.held.wait(30)
    assert status_of(deployment, withdrawal) == "signed"
    deployment.celery.kill("worker")
    proxy.release.set()

    wait_until(lambda: status_of(deployment, withdrawal) == "broadcast", timeout=60)
    chain.dev.mine(CONFIRMATIONS)
    settle(watcher)
    assert status_of(deployment, withdrawal) == "confirmed"
    assert chain.dev.devnet.balance(to) == ETH // 2
    assert len(chain.attempts(withdrawal)) == 1
    assert account_nonces(chain.dev.rpc, chain.hot.address).latest == 1
    assert deployment.celery.restarts
