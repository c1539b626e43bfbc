"""Withdrawals against the session's devnet: an API process whose catalogue points at it,
with limits, approval thresholds, a token fee rate and a blocked address configured."""

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from chains import FeePolicy
from chains.devnet import DevChain
from custody import KeySigner, MasterSeed
from tests.api_fixtures import ApiTenant, running_api
from tests.api_fixtures import _api_tenant as api_tenant_of
from tests.api_helpers import idempotency_key
from tests.factories import Factory
from tests.wallet.deposits.conftest import IsolatedChain, LiveChain
from tests.wallet.deposits.conftest import isolated_chain as isolated_chain  # noqa: PLC0414
from tests.wallet.deposits.conftest import seed as seed  # noqa: PLC0414
from wallet.assets.service import Catalogue, load_catalogue
from wallet.database import unit_of_work
from wallet.ledger import service as ledger
from wallet.ledger.repository import system_account
from wallet.ledger.service import Posting, Reason, TransactionRequest
from wallet.settings import WithdrawalPolicy
from wallet.withdrawals.schemas import WithdrawalCreate
from wallet.withdrawals.service import NodeFeeQuoter, WithdrawalRules, request_withdrawal
from wallet.withdrawals.tasks import BroadcastOptions, HotWallet, WithdrawalBroadcaster

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


@dataclass
class SendingChain:
    """A fresh devnet with a hot wallet, and withdrawals requested in this process."""

    live: LiveChain
    hot: HotWallet
    factory: Factory
    rules: WithdrawalRules
    quoter: NodeFeeQuoter

    @property
    def catalogue(self) -> Catalogue:
        return self.live.catalogue

    @property
    def dev(self) -> DevChain:
        return self.live.dev

    def broadcaster(
        self, bump_after: float = 3600.0, sign_batch: int = 50
    ) -> WithdrawalBroadcaster:
        options = BroadcastOptions(
            FeePolicy(max_fee_per_gas_cap=500 * 10**9),
            timedelta(seconds=bump_after),
            sign_batch=sign_batch,
        )
        sessions = self.factory.sessions
        engine = sessions.kw["bind"]
        return WithdrawalBroadcaster(engine, sessions, self.catalogue, self.hot, options)

    def fund_hot_wallet(self, wei: int = 0, tokens: int = 0) -> None:
        """Send ETH and USDC from a dev account to the hot wallet, and mine; booked as the
        house's own money (`capital:<chain>`), so the chain's holdings reconcile."""
        sender = self.dev.accounts[1].address
        if wei:
            self.dev.send_eth(sender, self.hot.address, wei)
        if tokens:
            self.dev.send_tokens(sender, self.hot.address, tokens)
        self.dev.mine()
        name = self.live.name
        with unit_of_work(self.factory.sessions) as session:
            for asset, amount in ((self.live.native, wei), (self.live.token, tokens)):
                if amount:
                    chain = system_account(session, f"chain:{name}", asset)
                    capital = system_account(session, f"capital:{name}", asset)
                    ledger.post(
                        session,
                        TransactionRequest(
                            reason=Reason.ADJUSTMENT,
                            postings=[Posting(chain, -amount), Posting(capital, amount)],
                        ),
                    )

    def request(self, wallet_id: str, asset: str, amount: str, address: str) -> str:
        """Request a withdrawal as the API does; its id."""
        body = WithdrawalCreate.model_validate(withdrawal_body(wallet_id, asset, amount, address))
        body.destination.chain = self.live.name
        with unit_of_work(self.factory.sessions) as session:
            return request_withdrawal(
                session,
                self.factory.tenant_id,
                "key_test",
                body,
                catalogue=self.catalogue,
                rules=self.rules,
                quote=self.quoter,
            ).id

    def withdrawal(self, withdrawal_id: str) -> dict[str, Any]:
        with unit_of_work(self.factory.sessions) as session:
            row = session.execute(
                text("SELECT * FROM withdrawals WHERE id = :id"), {"id": withdrawal_id}
            ).mappings()
            return dict(row.one())

    def attempts(self, withdrawal_id: str) -> list[dict[str, Any]]:
        with unit_of_work(self.factory.sessions) as session:
            rows = session.execute(
                text(
                    "SELECT tx_hash, nonce, max_fee_per_gas, send_outcome, sent_at "
                    "FROM withdrawal_attempts WHERE withdrawal_id = :id ORDER BY signed_at"
                ),
                {"id": withdrawal_id},
            ).mappings()
            return [dict(row) for row in rows]


@pytest.fixture
def sending_chain(
    isolated_chain: IsolatedChain,
    sessions: sessionmaker[Session],
    seed: MasterSeed,
) -> Iterator[SendingChain]:
    live = isolated_chain()
    native, token = live.catalogue.asset(live.native), live.catalogue.asset(live.token)
    assets = {
        **live.catalogue.assets,
        native.code: dataclasses.replace(native, withdrawal_fee=10**14),
        token.code: dataclasses.replace(token, withdrawal_fee=500_000),
    }
    live.catalogue = Catalogue(chains=live.catalogue.chains, assets=assets)
    hot = HotWallet(
        live.config, KeySigner.hot_wallet(seed, account=live.config.chain_id), live.dev.rpc
    )
    rules = WithdrawalRules(
        policies={token.code: WithdrawalPolicy(fee_rate="3000")}, blocklist=frozenset()
    )
    quoter = NodeFeeQuoter(FeePolicy(max_fee_per_gas_cap=500 * 10**9))
    yield SendingChain(live, hot, Factory(sessions, live.catalogue), rules, quoter)
    quoter.close()
