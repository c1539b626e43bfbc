"""Real watcher processes: SIGKILLed mid catch-up, two competing for a chain, a node that dies."""

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from chains import NodeUnreachable, RpcClient
from chains.devnet import Devnet, find_free_port
from tests.factories import Factory
from tests.wallet.deposits.conftest import (
    CONFIRMATIONS,
    IsolatedChain,
    LiveChain,
    cursor_of,
    deposits_of,
    wait_for,
    write_catalogue_file,
)
from wallet.database import unit_of_work
from wallet.deposits.lease import ChainLease
from wallet.deposits.watcher import DepositWatcher, WatcherOptions, chain_follower
from wallet.ledger.reconcile import check_ledger

ETH = 10**18
USDC = 10**6


def watcher_command(chain: str, *options: str) -> list[str]:
    """`wallet watch --chain NAME ...`, as an operator runs it."""
    return [sys.executable, "-m", "wallet", "watch", "--chain", chain, *options]


class WatcherProcess:
    def __init__(self, chain: LiveChain, database_url: str, workdir: Path, *options: str) -> None:
        self.log_path = workdir / f"watcher-{time.monotonic_ns()}.log"
        env = {
            **os.environ,
            "WALLET_DATABASE_URL": database_url,
            "WALLET_ASSETS_FILE": str(write_catalogue_file(chain, workdir / "assets.toml")),
            "WALLET_DATA_DIR": str(workdir),
            "PYTHONUNBUFFERED": "1",
        }
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                watcher_command(chain.name, "--poll-interval", "0.05", *options),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM once the watcher runs (its handler is installed by then), then its status."""
        wait_for(lambda: "watcher active" in self.log, "the watcher is active")
        self.process.terminate()
        return self.process.wait(timeout=30)


@pytest.fixture
def watchers(database_url: str, tmp_path: Path) -> Iterator[Callable[..., WatcherProcess]]:
    started: list[WatcherProcess] = []

    def start(chain: LiveChain, *options: str) -> WatcherProcess:
        started.append(WatcherProcess(chain, database_url, tmp_path, *options))
        return started[-1]

    yield start
    for watcher in started:
        if watcher.process.poll() is None:
            watcher.kill()


def credited_count(sessions: sessionmaker[Session], wallets: list[str]) -> int:
    return sum(d["status"] == "credited" for d in deposits_of(sessions, wallets))


@pytest.mark.slow
def test_sigkill_at_random_points_of_a_catch_up_credits_every_deposit_exactly_once(
    factory: Factory,
    isolated_chain: IsolatedChain,
    watchers: Callable[..., WatcherProcess],
) -> None:
    chain = isolated_chain()
    sessions = chain.sessions
    rng = random.Random()
    wallets = [factory.wallet() for _ in range(40)]
    addresses = {w: chain.address(factory, w) for w in wallets}
    start = chain.dev.devnet.block_number() + 1
    sent: dict[tuple[str, str], int] = {}
    senders = [a.address for a in chain.dev.accounts[1:9]]
    count = 0
    for _ in range(60):
        for _ in range(5):
            wallet = rng.choice(wallets)
            sender = rng.choice(senders)
            if rng.random() < 0.5:
                amount = rng.randint(10**15, 10**18)
                chain.dev.send_eth(sender, addresses[wallet], amount)
                key = (wallet, chain.native)
            else:
                amount = rng.randint(10**4, 10**9)
                chain.dev.send_tokens(sender, addresses[wallet], amount)
                key = (wallet, chain.token)
            sent[key] = sent.get(key, 0) + amount
            count += 1
        chain.dev.mine()
        chain.dev.mine(rng.randint(1, 8))  # empty blocks: more steps, more places to die
    head = chain.dev.mine(CONFIRMATIONS)

    kills_mid_catch_up = 0
    for _ in range(6):
        watcher = watchers(chain, "--start-block", str(start), "--batch-blocks", "3")
        before = cursor_of(sessions, chain.name)
        if before >= head:
            watcher.kill()
            break
        wait_for(lambda: cursor_of(sessions, chain.name) > before, "the watcher makes progress")  # noqa: B023
        time.sleep(rng.uniform(0, 0.3))
        watcher.kill()
        kills_mid_catch_up += cursor_of(sessions, chain.name) < head
    final = watchers(chain, "--start-block", str(start), "--batch-blocks", "3")
    wait_for(lambda: credited_count(sessions, wallets) == count, "every deposit is credited", 120)
    assert final.stop() == 0

    assert kills_mid_catch_up >= 3
    deposits = deposits_of(sessions, wallets)
    assert len(deposits) == count == 300
    assert len({d["credit_transaction_id"] for d in deposits}) == count
    for (wallet, asset), amount in sent.items():
        balance = chain.balance(wallet, asset)
        assert (balance.posted, balance.pending_in) == (amount, 0)
    with unit_of_work(sessions) as session:
        per_asset = dict(
            session.execute(
                text(
                    "SELECT asset, sum(posted) FROM accounts WHERE wallet_id = ANY(:w) "
                    "GROUP BY asset"
                ),
                {"w": wallets},
            ).all()
        )
        chain_side = dict(
            session.execute(
                text("SELECT asset, posted FROM accounts WHERE system_name = :name"),
                {"name": f"chain:{chain.name}"},
            ).all()
        )
        credits = session.execute(
            text(
                "SELECT count(*), count(DISTINCT external_ref) FROM ledger_transactions "
                "WHERE external_kind = 'deposit' AND external_ref LIKE :prefix"
            ),
            {"prefix": f"{chain.name}:%"},
        ).one()
        events = session.execute(
            text(
                "SELECT count(*), count(DISTINCT payload ->> 'id') FROM outbox "
                "WHERE event_type = 'deposit.credited' AND payload ->> 'chain' = :chain"
            ),
            {"chain": chain.name},
        ).one()
        assert all(check.ok for check in check_ledger(session))
    for asset in (chain.native, chain.token):
        total = sum(amount for (_, a), amount in sent.items() if a == asset)
        assert per_asset[asset] == total
        assert chain_side[asset] == -total
    assert tuple(credits) == (count, count)
    assert tuple(events) == (count, count)


@pytest.mark.slow
def test_a_second_watcher_waits_and_takes_over_when_the_first_is_killed(
    factory: Factory,
    isolated_chain: IsolatedChain,
    watchers: Callable[..., WatcherProcess],
) -> None:
    chain = isolated_chain()
    sessions = chain.sessions
    wallet = factory.wallet()
    address = chain.address(factory, wallet)
    start = str(chain.dev.devnet.block_number())
    first = watchers(chain, "--start-block", start)
    wait_for(lambda: cursor_of(sessions, chain.name) >= 0, "the first watcher steps")
    second = watchers(chain, "--start-block", start)
    wait_for(lambda: "another watcher holds the lease" in second.log, "the second one waits")

    sender = chain.dev.accounts[1].address
    chain.dev.send_eth(sender, address, ETH)
    chain.dev.mine(CONFIRMATIONS)
    wait_for(lambda: credited_count(sessions, [wallet]) == 1, "the first deposit is credited")
    assert "watcher active" not in second.log

    first.kill()
    chain.dev.send_tokens(sender, address, 42 * USDC)
    chain.dev.mine(CONFIRMATIONS)
    wait_for(lambda: credited_count(sessions, [wallet]) == 2, "the second one took over")

    assert "lease taken over" in second.log
    assert second.stop() == 0
    assert (
        chain.balance(wallet, chain.native).posted,
        chain.balance(wallet, chain.token).posted,
    ) == (
        ETH,
        42 * USDC,
    )


@contextmanager
def running(watcher: DepositWatcher, lease: ChainLease) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(lease, stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()


def test_node_down_and_back_the_watcher_waits_logs_and_resumes(
    factory: Factory,
    isolated_chain: IsolatedChain,
    engine: Engine,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = find_free_port()
    state = tmp_path / "anvil-state.json"
    chain = isolated_chain(port=port, extra_args=("--dump-state", str(state)))
    sessions = chain.sessions
    wallet = factory.wallet()
    address = chain.address(factory, wallet)
    sender = chain.dev.accounts[1].address
    rpc = RpcClient(chain.config.rpc_url, connect_timeout=0.5, timeout=5)
    options = WatcherOptions(poll_interval=0.05, max_retry_interval=0.5)
    source = chain_follower(chain.catalogue, chain.name, rpc)
    watcher = DepositWatcher(sessions, chain.catalogue, chain.name, source, options)

    lease = ChainLease.for_engine(engine, chain.name)
    with caplog.at_level(logging.INFO, logger="wallet.deposits"), rpc, running(watcher, lease):
        wait_for(lambda: cursor_of(sessions, chain.name) >= 0, "the watcher steps")
        chain.dev.send_eth(sender, address, 2 * ETH)
        chain.dev.mine()
        wait_for(lambda: len(deposits_of(sessions, [wallet])) == 1, "the deposit is seen")
        tip = cursor_of(sessions, chain.name)

        chain.dev.devnet.stop()  # SIGTERM: Anvil writes its state
        wait_for(
            lambda: sum("node unreachable" in r.getMessage() for r in caplog.records) >= 3,
            "the watcher logs the outage and keeps retrying",
        )
        with pytest.raises(NodeUnreachable):
            DepositWatcher(sessions, chain.catalogue, chain.name, source, options).step()
        assert cursor_of(sessions, chain.name) == tip
        assert [d["status"] for d in deposits_of(sessions, [wallet])] == ["seen"]

        with Devnet(port=port, chain_id=chain.config.chain_id, load_state=state) as back:
            back.send_eth(sender, address, 3 * ETH)
            back.mine(CONFIRMATIONS)
            wait_for(lambda: credited_count(sessions, [wallet]) == 2, "both are credited")

    assert any("resuming" in r.getMessage() for r in caplog.records)
    assert chain.balance(wallet, chain.native).posted == 5 * ETH
