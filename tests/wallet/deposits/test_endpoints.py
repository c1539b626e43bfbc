"""The deposit endpoints on the real application, with API keys and the test database."""

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from custody import checksum_address
from tests.factories import Factory
from tests.wallet.deposits.conftest import CONFIRMATIONS, LiveChain, settle
from wallet.api.app import create_app
from wallet.apikeys.models import Scope
from wallet.apikeys.service import create_key
from wallet.assets.service import Catalogue
from wallet.database import unit_of_work
from wallet.runtime import Runtime
from wallet.settings import Settings


@pytest.fixture
def app(
    engine: Engine,
    sessions: sessionmaker[Session],
    live_catalogue: Catalogue,
    chain: LiveChain,
) -> FastAPI:
    runtime = Runtime(Settings(), engine, sessions, live_catalogue)
    app = create_app(runtime)
    app.state.address_issuer = chain.book
    return app


@pytest.fixture
def api(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn in a thread of the test process; its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def client_for(api: str, factory: Factory, *scopes: Scope) -> httpx.Client:
    with unit_of_work(factory.sessions) as session:
        secret = create_key(session, factory.tenant_id, scopes).secret
    return httpx.Client(base_url=api, headers={"Authorization": f"Bearer {secret}"}, timeout=30)


@pytest.fixture
def client(api: str, factory: Factory) -> Iterator[httpx.Client]:
    with client_for(api, factory, Scope.READ, Scope.TRANSFER) as client:
        yield client


def test_post_gives_the_wallets_address_once_and_the_same_one_again(
    client: httpx.Client, factory: Factory
) -> None:
    wallet = factory.wallet()

    first = client.post(f"/v1/wallets/{wallet}/deposit-addresses", json={"chain": "devnet"})
    again = client.post(f"/v1/wallets/{wallet}/deposit-addresses", json={"chain": "devnet"})
    listed = client.get(f"/v1/wallets/{wallet}/deposit-addresses")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json() == listed.json()[0]
    body = first.json()
    assert (body["wallet_id"], body["chain"], body["chain_id"]) == (wallet, "devnet", 31337)
    assert body["address"] == checksum_address(bytes.fromhex(body["address"][2:]))


def test_bad_requests_are_problems(
    api: str, client: httpx.Client, factory: Factory, catalogue: Catalogue
) -> None:
    wallet = factory.wallet()
    other = Factory(factory.sessions, catalogue)

    unknown_chain = client.post(f"/v1/wallets/{wallet}/deposit-addresses", json={"chain": "x"})
    foreign = client.post(
        f"/v1/wallets/{other.wallet()}/deposit-addresses", json={"chain": "devnet"}
    )
    with client_for(api, factory, Scope.READ) as reader:
        refused = reader.post(f"/v1/wallets/{wallet}/deposit-addresses", json={"chain": "devnet"})

    assert (unknown_chain.status_code, unknown_chain.json()["type"].rsplit("/", 1)[1]) == (
        422,
        "unknown-chain",
    )
    assert (foreign.status_code, foreign.json()["type"].rsplit("/", 1)[1]) == (
        404,
        "unknown-wallet",
    )
    assert refused.status_code == 403
    assert client.get("/v1/deposits/dep_nothing").status_code == 404


def test_deposits_are_listed_and_read_with_status_and_confirmations(
    api: str, client: httpx.Client, factory: Factory, chain: LiveChain, catalogue: Catalogue
) -> None:
    watcher = chain.watcher()
    settle(watcher)
    wallet = factory.wallet()
    address = client.post(
        f"/v1/wallets/{wallet}/deposit-addresses", json={"chain": "devnet"}
    ).json()["address"]
    sender = chain.dev.accounts[6].address
    eth_tx = chain.dev.send_eth(sender, address, 1_500_000_000_000_000_000)
    chain.dev.send_tokens(sender, address, 2_500_001)
    chain.dev.mine()
    settle(watcher)

    page = client.get("/v1/deposits", params={"wallet_id": wallet}).json()

    assert page["next_cursor"] is None
    assert {(d["asset"], d["amount"], d["status"], d["confirmations"]) for d in page["data"]} == {
        ("ETH", "1.500000000000000000", "seen", 1),
        ("USDC", "2.500001", "seen", 1),
    }
    eth = next(d for d in page["data"] if d["asset"] == "ETH")
    assert (eth["tx_hash"], eth["log_index"], eth["confirmations_required"]) == (
        eth_tx,
        -1,
        CONFIRMATIONS,
    )

    chain.dev.mine(CONFIRMATIONS)
    settle(watcher)
    read = client.get(f"/v1/deposits/{eth['id']}").json()
    assert (read["status"], read["confirmations"]) == ("credited", CONFIRMATIONS + 1)
    assert read["credited_at"] is not None

    first = client.get("/v1/deposits", params={"wallet_id": wallet, "limit": 1}).json()
    second = client.get(
        "/v1/deposits", params={"wallet_id": wallet, "limit": 1, "cursor": first["next_cursor"]}
    ).json()
    assert len(first["data"]) == len(second["data"]) == 1
    assert first["data"][0]["id"] != second["data"][0]["id"]
    assert second["next_cursor"] is None

    other = Factory(factory.sessions, catalogue)
    with client_for(api, other, Scope.READ) as stranger:
        assert stranger.get(f"/v1/deposits/{eth['id']}").status_code == 404
        assert stranger.get("/v1/deposits", params={"wallet_id": wallet}).json()["data"] == []
