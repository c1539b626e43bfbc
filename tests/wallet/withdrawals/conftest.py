"""Withdrawals against the session's devnet: an API process whose catalogue points at it,
with limits, approval thresholds, a token fee rate and a blocked address configured."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from chains.devnet import DevChain
from tests.api_fixtures import ApiTenant, running_api
from tests.api_fixtures import _api_tenant as api_tenant_of
from tests.api_helpers import idempotency_key
from wallet.assets.service import Catalogue, load_catalogue
from wallet.database import unit_of_work

ETH = 10**18
USDC = 10**6
BLOCKED = "0x000000000000000000000000000000000000dEaD"
POLICIES = {
    "ETH": {
        "per_transaction": "5",
        "daily": "8",
        "approval_above": "1",
        "dual_approval_above": "2",
    },
    "USDC": {"per_transaction": "100000", "fee_rate": "3000"},
}
CONFIRMATIONS = 3


def write_devnet_catalogue(dev: DevChain, path: Path) -> Path:
    """The built-in catalogue's devnet, ETH and USDC, pointed at the running devnet."""
    path.write_text(
        f"""
[[chains]]
name = "devnet"
chain_id = {dev.chain_id}
rpc_url = "{dev.rpc_url}"
confirmations = {CONFIRMATIONS}

[[assets]]
code = "ETH"
kind = "native"
decimals = 18
chain = "devnet"
min_deposit = "1000000000000"
withdrawal_fee = "100000000000000"

[[assets]]
code = "USDC"
kind = "erc20"
decimals = 6
chain = "devnet"
contract_address = "{dev.token_address}"
min_deposit = "10000"
withdrawal_fee = "500000"

[[assets]]
code = "USD"
kind = "fiat"
decimals = 2
"""
    )
    return path


@pytest.fixture(scope="session")
def devnet_catalogue_file(devnet: DevChain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_devnet_catalogue(devnet, tmp_path_factory.mktemp("catalogue") / "assets.toml")


@pytest.fixture(scope="session")
def devnet_catalogue(devnet_catalogue_file: Path) -> Catalogue:
    return load_catalogue(devnet_catalogue_file)


WITHDRAWAL_ENV = {
    "WALLET_WITHDRAWAL_POLICIES": json.dumps(POLICIES),
    "WALLET_WITHDRAWAL_BLOCKLIST": json.dumps([BLOCKED]),
}


@pytest.fixture(scope="session")
def withdrawal_api(
    database_url: str,
    engine: object,
    devnet_catalogue_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """An API process on the test database whose chain is the session's devnet."""
    env = {**WITHDRAWAL_ENV, "WALLET_ASSETS_FILE": str(devnet_catalogue_file)}
    with running_api(database_url, tmp_path_factory.mktemp("withdrawal-api"), env) as url:
        yield url


def _customer(
    withdrawal_api: str, sessions: sessionmaker[Session], devnet_catalogue: Catalogue
) -> Iterator[ApiTenant]:
    api_tenant = api_tenant_of(withdrawal_api, sessions, devnet_catalogue)
    with api_tenant.client:
        yield api_tenant


@pytest.fixture
def customer(
    withdrawal_api: str, sessions: sessionmaker[Session], devnet_catalogue: Catalogue
) -> Iterator[ApiTenant]:
    """A tenant of its own on the withdrawal API, with an all-scopes key."""
    yield from _customer(withdrawal_api, sessions, devnet_catalogue)


@pytest.fixture
def other_customer(
    withdrawal_api: str, sessions: sessionmaker[Session], devnet_catalogue: Catalogue
) -> Iterator[ApiTenant]:
    yield from _customer(withdrawal_api, sessions, devnet_catalogue)


def crypto(address: str, chain: str = "devnet") -> dict[str, str]:
    return {"type": "crypto", "chain": chain, "address": address}


def withdrawal_body(
    wallet_id: str, asset: str, amount: str, address: str, **extra: Any
) -> dict[str, Any]:
    return {
        "wallet_id": wallet_id,
        "asset": asset,
        "amount": amount,
        "destination": crypto(address),
        **extra,
    }


def post_withdrawal(
    client: httpx.Client, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else idempotency_key()
    return client.post("/v1/withdrawals", json=body, headers=headers)


def withdrawal_rows(sessions: sessionmaker[Session], wallet_id: str) -> list[dict[str, Any]]:
    with unit_of_work(sessions) as session:
        rows = session.execute(
            text("SELECT * FROM withdrawals WHERE wallet_id = :w ORDER BY created_at"),
            {"w": wallet_id},
        ).mappings()
        return [dict(row) for row in rows]
