"""Chains wired to the wallet: Anvil devnets in the asset catalogue, deposit addresses, watchers.

`live_chains` maps the built-in chains `devnet` and `devnet-l2` (assets ETH, USDC, ETH-L2,
USDC-L2) onto the session's two Anvil nodes; their watcher state lives in the test database for
the whole session, so each test simply steps the watcher until it has caught up. Tests that
stop, kill or reorganise a chain deeply use `isolated_chain`: a fresh Anvil under a chain name
and asset codes of their own, so nothing they do is seen by other tests.
"""

import dataclasses
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from chains import TraceMode
from chains.devnet import DevChain, start_dev_chain
from custody import MasterSeed
from tests.factories import Factory
from wallet.assets.service import Asset, AssetKind, Catalogue, Chain, store_catalogue
from wallet.database import unit_of_work
from wallet.deposits.addresses import DepositAddressBook
from wallet.deposits.service import deposit_address
from wallet.deposits.watcher import DepositWatcher, StepOutcome, WatcherOptions, chain_follower
from wallet.ledger.repository import Balance, balance, user_account

# The BIP-39 test vector mnemonic: a known seed, never one for real funds.
TEST_MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
CONFIRMATIONS = 3


@pytest.fixture(scope="session")
def seed() -> MasterSeed:
    return MasterSeed.from_mnemonic(TEST_MNEMONIC)


@dataclass
class LiveChain:
    """A running devnet as the wallet sees it: its catalogue entry, assets and addresses."""

    name: str
    dev: DevChain
    catalogue: Catalogue
    sessions: sessionmaker[Session]
    book: DepositAddressBook
    native: str
    token: str

    @property
    def config(self) -> Chain:
        return self.catalogue.chain(self.name)

    def watcher(self, trace_mode: TraceMode = TraceMode.NONE, **options: object) -> DepositWatcher:
        """A watcher following the node from its head, as `wallet watch` does."""
        source = chain_follower(self.catalogue, self.name, self.dev.rpc, trace_mode=trace_mode)
        return DepositWatcher(
            self.sessions,
            self.catalogue,
            self.name,
            source,
            WatcherOptions(**options),  # type: ignore[arg-type]
        )

    def address(self, factory: Factory, wallet_id: str) -> str:
        """The wallet's deposit address on this chain (lowercase hex)."""
        with unit_of_work(self.sessions) as session:
            issued = deposit_address(
                session,
                factory.tenant_id,
                wallet_id,
                self.name,
                issuer=self.book,
                catalogue=self.catalogue,
            )
            return issued.address.address

    def raw_transaction(self, tx_hash: str) -> str:
        """The signed transaction as sent, to send it again after a reorg dropped it."""
        raw: str = self.dev.rpc.call("eth_getRawTransactionByHash", tx_hash)
        return raw

    def balance(self, wallet_id: str, asset: str) -> Balance:
        with unit_of_work(self.sessions) as session:
            return balance(session, user_account(session, wallet_id, asset))


def settle(watcher: DepositWatcher, max_steps: int = 1000) -> list[StepOutcome]:
    """Step until the watcher has caught up with the node's head."""
    outcomes = []
    for _ in range(max_steps):
        outcome = watcher.step()
        outcomes.append(outcome)
        if outcome.caught_up:
            return outcomes
    raise AssertionError("the watcher did not catch up")


def with_chain(catalogue: Catalogue, chain: Chain, assets: list[Asset]) -> Catalogue:
    return Catalogue(
        chains={**catalogue.chains, chain.name: chain},
        assets={**catalogue.assets, **{a.code: a for a in assets}},
    )


@pytest.fixture(scope="session")
def live_catalogue(catalogue: Catalogue, devnet: DevChain, second_devnet: DevChain) -> Catalogue:
    """The built-in catalogue pointed at the session's Anvil nodes and TestUSD contracts."""
    chains = dict(catalogue.chains)
    assets = dict(catalogue.assets)
    for name, dev, token in (("devnet", devnet, "USDC"), ("devnet-l2", second_devnet, "USDC-L2")):
        chains[name] = dataclasses.replace(
            chains[name], rpc_url=dev.rpc_url, confirmations=CONFIRMATIONS
        )
        assets[token] = dataclasses.replace(assets[token], contract_address=dev.token_address)
    return Catalogue(chains=chains, assets=assets)


@pytest.fixture(scope="session")
def live_chains(
    live_catalogue: Catalogue,
    sessions: sessionmaker[Session],
    seed: MasterSeed,
    devnet: DevChain,
    second_devnet: DevChain,
) -> dict[str, LiveChain]:
    book = DepositAddressBook.from_seed(seed, live_catalogue.chains.values())
    return {
        "devnet": LiveChain("devnet", devnet, live_catalogue, sessions, book, "ETH", "USDC"),
        "devnet-l2": LiveChain(
            "devnet-l2", second_devnet, live_catalogue, sessions, book, "ETH-L2", "USDC-L2"
        ),
    }


@pytest.fixture(params=["devnet", "devnet-l2"])
def any_chain(request: pytest.FixtureRequest, live_chains: dict[str, LiveChain]) -> LiveChain:
    """Each of the two configured chains in turn."""
    return live_chains[request.param]


@pytest.fixture
def chain(live_chains: dict[str, LiveChain]) -> LiveChain:
    return live_chains["devnet"]


IsolatedChain = Callable[..., LiveChain]


@pytest.fixture
def isolated_chain(
    catalogue: Catalogue, sessions: sessionmaker[Session], seed: MasterSeed
) -> Iterator[IsolatedChain]:
    """Start fresh devnets under chain names and asset codes no other test uses."""
    started: list[DevChain] = []

    def start(
        *, port: int | None = None, extra_args: tuple[str, ...] = (), confirmations: int = 3
    ) -> LiveChain:
        tag = secrets.token_hex(3)
        chain_id = 100_000 + secrets.randbelow(1_000_000)
        dev = start_dev_chain(chain_id=chain_id, port=port, extra_args=extra_args)
        started.append(dev)
        name = f"test-{tag}"
        config = Chain(name, chain_id, dev.rpc_url, confirmations)
        native = Asset(f"ETH-{tag}", AssetKind.NATIVE, 18, name, min_deposit=10**12)
        token = Asset(
            f"USDC-{tag}", AssetKind.ERC20, 6, name, dev.token_address, min_deposit=10_000
        )
        isolated = with_chain(catalogue, config, [native, token])
        with unit_of_work(sessions) as session:
            store_catalogue(session, isolated)
        book = DepositAddressBook.from_seed(seed, [config])
        return LiveChain(name, dev, isolated, sessions, book, native.code, token.code)

    yield start
    for dev in started:
        dev.devnet.stop()


def write_catalogue_file(chain: LiveChain, path: Path, rpc_url: str | None = None) -> Path:
    """The chain and its assets as a TOML catalogue, for a watcher (or worker) process; its
    node at `rpc_url` if given."""
    config = chain.config
    native = chain.catalogue.asset(chain.native)
    token = chain.catalogue.asset(chain.token)
    path.write_text(
        f"""
[[chains]]
name = "{config.name}"
chain_id = {config.chain_id}
rpc_url = "{rpc_url or config.rpc_url}"
confirmations = {config.confirmations}

[[assets]]
code = "{native.code}"
kind = "native"
decimals = 18
chain = "{config.name}"
min_deposit = "{native.min_deposit}"
withdrawal_fee = "{native.withdrawal_fee}"

[[assets]]
code = "{token.code}"
kind = "erc20"
decimals = 6
chain = "{config.name}"
contract_address = "{token.contract_address}"
min_deposit = "{token.min_deposit}"
withdrawal_fee = "{token.withdrawal_fee}"
"""
    )
    return path


def deposits_of(sessions: sessionmaker[Session], wallet_ids: list[str]) -> list[dict[str, object]]:
    with unit_of_work(sessions) as session:
        rows = session.execute(
            text(
                "SELECT id, wallet_id, asset, amount, status, tx_hash, log_index, block_number, "
                "block_hash, confirmations, hold_id, credit_transaction_id FROM deposits "
                "WHERE wallet_id = ANY(:w) ORDER BY block_number, log_index"
            ),
            {"w": wallet_ids},
        ).mappings()
        return [dict(row) | {"amount": int(row["amount"])} for row in rows]


def events_of(sessions: sessionmaker[Session], deposit_id: str) -> list[tuple[str, str]]:
    """(event type, status in the event) of a deposit's outbox events, in order."""
    with unit_of_work(sessions) as session:
        rows = session.execute(
            text(
                "SELECT event_type, payload ->> 'status' FROM outbox "
                "WHERE payload ->> 'id' = :id ORDER BY id"
            ),
            {"id": deposit_id},
        ).all()
        return [(row[0], row[1]) for row in rows]


def external_refs(sessions: sessionmaker[Session], deposit_ids: list[str]) -> list[str]:
    """The external references of the deposits' credit transactions, in order."""
    with unit_of_work(sessions) as session:
        return list(
            session.execute(
                text(
                    "SELECT external_ref FROM ledger_transactions WHERE external_kind = 'deposit' "
                    "AND metadata ->> 'deposit_id' = ANY(:ids) ORDER BY id"
                ),
                {"ids": deposit_ids},
            ).scalars()
        )


def cursor_of(sessions: sessionmaker[Session], chain: str) -> int:
    """The chain's cursor block, -1 before the first step."""
    with unit_of_work(sessions) as session:
        found = session.execute(
            text("SELECT block_number FROM chain_cursors WHERE chain = :c"), {"c": chain}
        ).scalar_one_or_none()
        return -1 if found is None else int(found)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)
