"""Sweeps against a fresh devnet: deposits credited by the watcher, a sweeper with its rules."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from chains import FeePolicy, RpcClient
from custody import DepositKeyTree, MasterSeed
from tests.wallet.deposits.conftest import CONFIRMATIONS, settle
from tests.wallet.deposits.conftest import isolated_chain as isolated_chain  # noqa: PLC0414
from tests.wallet.deposits.conftest import seed as seed  # noqa: PLC0414
from tests.wallet.withdrawals.conftest import ETH, USDC, SendingChain
from tests.wallet.withdrawals.conftest import sending_chain as sending_chain  # noqa: PLC0414
from wallet.database import unit_of_work
from wallet.deposits.addresses import bip44_account
from wallet.deposits.watcher import DepositWatcher
from wallet.sweeps.holdings import Holding, reconcile_chain
from wallet.sweeps.service import SweepRules
from wallet.sweeps.tasks import CustodyChain, Sweeper, SweepReport

COLD = "0x" + "c0" * 20


@dataclass
class SweepingChain:
    """A sending chain with its watcher and a sweeper: thresholds 0.1 ETH and 10 USDC,
    ceilings 50 ETH and 40 USDC, a cold address."""

    chain: SendingChain
    custody: CustodyChain
    watcher: DepositWatcher

    @property
    def native(self) -> str:
        return self.chain.live.native

    @property
    def token(self) -> str:
        return self.chain.live.token

    def run(self, *, bump_after: timedelta = timedelta(minutes=1)) -> SweepReport:
        rules = SweepRules(
            thresholds={self.native: ETH // 10, self.token: 10 * USDC},
            ceilings={self.native: 50 * ETH, self.token: 40 * USDC},
            cold_addresses={self.chain.live.name: COLD},
            fee_policy=FeePolicy(max_fee_per_gas_cap=500 * 10**9),
            bump_after=bump_after,
        )
        sessions = self.chain.factory.sessions
        engine = sessions.kw["bind"]
        return Sweeper(engine, sessions, self.chain.catalogue, self.custody, rules).run()

    def mine(self, blocks: int = 1) -> None:
        self.chain.dev.mine(blocks)
        settle(self.watcher)

    def deposit(self, wallet_id: str, *, wei: int = 0, tokens: int = 0) -> str:
        """Pay the wallet's deposit address from a dev account; credited by the watcher."""
        address = self.chain.live.address(self.chain.factory, wallet_id)
        sender = self.chain.dev.accounts[1].address
        if wei:
            self.chain.dev.send_eth(sender, address, wei)
        if tokens:
            self.chain.dev.send_tokens(sender, address, tokens)
        self.mine(CONFIRMATIONS)
        return address

    def fund_hot_wallet(self, *, wei: int = 0, tokens: int = 0) -> None:
        self.chain.fund_hot_wallet(wei, tokens)
        settle(self.watcher)

    def sweeps(self) -> list[dict[str, Any]]:
        with unit_of_work(self.chain.factory.sessions) as session:
            rows = session.execute(
                text("SELECT * FROM sweeps WHERE chain = :c ORDER BY created_at"),
                {"c": self.chain.live.name},
            ).mappings()
            return [dict(row) for row in rows]

    def transactions(self, sweep_id: str) -> list[dict[str, Any]]:
        with unit_of_work(self.chain.factory.sessions) as session:
            rows = session.execute(
                text("SELECT * FROM sweep_transactions WHERE sweep_id = :s ORDER BY signed_at"),
                {"s": sweep_id},
            ).mappings()
            return [dict(row) for row in rows]

    def posted(self, name: str, asset: str) -> int:
        with unit_of_work(self.chain.factory.sessions) as session:
            found = session.execute(
                text("SELECT posted FROM accounts WHERE system_name = :n AND asset = :a"),
                {"n": f"{name}:{self.chain.live.name}", "a": asset},
            ).scalar()
            return int(found or 0)

    def holdings(self, rpc: RpcClient | None = None) -> list[Holding]:
        with unit_of_work(self.chain.factory.sessions) as session:
            return reconcile_chain(
                session,
                self.chain.catalogue,
                self.chain.live.name,
                rpc or self.chain.dev.rpc,
                [self.custody.hot_address],
            )


@pytest.fixture
def sweeping_chain(sending_chain: SendingChain, seed: MasterSeed) -> Iterator[SweepingChain]:
    live = sending_chain.live
    account = bip44_account(live.config)
    custody = CustodyChain(
        live.config, sending_chain.hot.signer, DepositKeyTree(seed, account=account), live.dev.rpc
    )
    watcher = live.watcher()
    settle(watcher)
    yield SweepingChain(sending_chain, custody, watcher)
