"""A halted chain stays halted and visible, and an operator's resume brings it back: a watcher
on a real Anvil node and PostgreSQL, a reorg deeper than its header window."""

import dataclasses
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.factories import Factory
from tests.wallet.deposits.conftest import (
    CONFIRMATIONS,
    IsolatedChain,
    LiveChain,
    cursor_of,
    deposits_of,
    events_of,
    settle,
    wait_for,
    write_catalogue_file,
)
from wallet import cli
from wallet.assets.service import Catalogue, Chain
from wallet.database import unit_of_work
from wallet.deposits.arrivals import ChainAssets
from wallet.deposits.chain_states import (
    ResumeRequest,
    chain_statuses,
    halted_state,
    record_halt,
    resume_chain,
)
from wallet.deposits.errors import ReorgBeyondWindow, ResumeRefused
from wallet.deposits.lease import ChainLease
from wallet.deposits.models import ChainRunState
from wallet.deposits.watcher import DepositWatcher
from wallet.ledger.reconcile import check_ledger
from wallet.webhooks.secrets import SecretBox
from wallet.webhooks.service import create_endpoint

ETH = 10**18
USDC = 10**6
WINDOW = 6


@dataclass
class RunningWatcher:
    """`DepositWatcher.run` on a thread, as `wallet watch` runs it."""

    watcher: DepositWatcher
    thread: threading.Thread
    stop: threading.Event

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture
def running(engine: Engine) -> Iterator[Callable[[LiveChain], RunningWatcher]]:
    started: list[RunningWatcher] = []

    def start(chain: LiveChain) -> RunningWatcher:
        watcher = chain.watcher(window_size=WINDOW, poll_interval=0.05, halt_poll_interval=0.05)
        stop = threading.Event()
        lease = ChainLease.for_engine(engine, chain.name)
        thread = threading.Thread(target=watcher.run, args=(lease, stop), daemon=True)
        thread.start()
        started.append(RunningWatcher(watcher, thread, stop))
        return started[-1]

    yield start
    for watcher in started:
        watcher.halt()


def statuses(sessions: sessionmaker[Session], wallets: list[str]) -> list[str]:
    return [str(d["status"]) for d in deposits_of(sessions, wallets)]


def chain_events(
    sessions: sessionmaker[Session], chain: str, tenants: list[str]
) -> list[tuple[str, str, str]]:
    """(tenant, event type, state) of the chain's `chain.*` events to `tenants`, in order."""
    with unit_of_work(sessions) as session:
        rows = session.execute(
            text(
                "SELECT tenant_id, event_type, payload ->> 'state' FROM outbox "
                "WHERE event_type LIKE 'chain.%' AND payload ->> 'chain' = :chain "
                "AND tenant_id = ANY(:tenants) ORDER BY id"
            ),
            {"chain": chain, "tenants": tenants},
        ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def resume(chain: LiveChain, from_block: int, reason: str = "checked the node") -> object:
    request = ResumeRequest(from_block, "test-operator", reason)
    return resume_chain(
        chain.sessions,
        chain.dev.rpc,
        ChainAssets.of(chain.catalogue, chain.name),
        request,
        window_size=WINDOW,
    )


def test_a_reorg_deeper_than_the_window_halts_the_chain_until_an_operator_resumes_it(
    factory: Factory,
    isolated_chain: IsolatedChain,
    secret_box: SecretBox,
    running: Callable[[LiveChain], RunningWatcher],
) -> None:
    chain = isolated_chain()
    sessions = chain.sessions
    operators, bystander = factory, Factory(sessions, chain.catalogue)
    with unit_of_work(sessions) as session:
        url = "https://hooks.example/ops"
        create_endpoint(session, operators.tenant_id, url, ["chain.*"], secrets=secret_box)
        create_endpoint(session, bystander.tenant_id, url, ["deposit.*"], secrets=secret_box)
    keeper, loser = factory.wallet(), factory.wallet()
    keeper_address, loser_address = chain.address(factory, keeper), chain.address(factory, loser)
    sender = chain.dev.accounts[1].address
    settle(chain.watcher(window_size=WINDOW))  # the cursor, before anything is sent
    first = running(chain)
    chain.dev.mine(2)

    chain.dev.send_eth(sender, keeper_address, 1 * ETH)  # stays on the chain
    chain.dev.mine(CONFIRMATIONS + 2)
    fork = chain.dev.devnet.block_number()
    chain.dev.send_eth(sender, loser_address, 2 * ETH)  # credited, then gone
    chain.dev.mine(CONFIRMATIONS + 2)
    chain.dev.send_tokens(sender, loser_address, 50 * USDC)  # seen, then gone
    head = chain.dev.mine()
    wait_for(lambda: cursor_of(sessions, chain.name) == head, "the watcher reaches the head")
    assert statuses(sessions, [keeper, loser]) == ["credited", "credited", "seen"]

    marker = {"from": chain.dev.accounts[9].address, "to": "0x" + secrets.token_hex(20)}
    chain.dev.devnet.reorg(head - fork, [(marker | {"value": "0x1"}, 0)])
    wait_for(lambda: halted(sessions, chain.name), "the watcher halts")

    with unit_of_work(sessions) as session:
        state = halted_state(session, chain.name)
        assert state is not None
        assert f"none of the last {WINDOW} stored blocks is canonical" in str(state.reason)
    assert first.thread.is_alive()  # up and idle, holding the lease
    # Other tenants' endpoints subscribed to `*` get theirs too; the bystander's does not.
    tenants = [operators.tenant_id, bystander.tenant_id]
    assert chain_events(sessions, chain.name, tenants) == [
        (operators.tenant_id, "chain.halted", "halted")
    ]
    # Halted, nothing more is recorded: not the new blocks, not a new deposit.
    chain.dev.send_eth(sender, keeper_address, 3 * ETH)
    chain.dev.mine(CONFIRMATIONS + 1)
    time.sleep(0.5)
    assert cursor_of(sessions, chain.name) == head
    assert statuses(sessions, [keeper, loser]) == ["credited", "credited", "seen"]

    # A watcher started on a halted chain stays halted too.
    first.halt()
    second = running(chain)
    time.sleep(0.5)
    assert cursor_of(sessions, chain.name) == head
    assert second.thread.is_alive()

    # Resuming above the fork would keep a credit whose block is gone: refused, nothing done.
    with pytest.raises(ResumeRefused, match=f"resume from below block {fork + 1}"):
        resume(chain, fork + 2)
    with unit_of_work(sessions) as session:
        assert halted_state(session, chain.name) is not None

    resume(chain, fork, "the explorer shows the fork at the block resumed from")

    with unit_of_work(sessions) as session:
        assert halted_state(session, chain.name) is None
        (status,) = chain_statuses(session, [chain.name])
        resumed = status.last_resume
        assert status.state is ChainRunState.RUNNING
        assert resumed is not None
        assert (resumed.from_block, resumed.operator, resumed.orphaned, resumed.reversed) == (
            fork,
            "test-operator",
            1,
            1,
        )
        assert resumed.reason == "the explorer shows the fork at the block resumed from"
        assert f"none of the last {WINDOW}" in resumed.halt_reason
    kept, reversed_, orphaned = deposits_of(sessions, [keeper, loser])[:3]
    assert (kept["status"], reversed_["status"], orphaned["status"]) == (
        "credited",
        "reversed",
        "orphaned",
    )
    assert events_of(sessions, str(reversed_["id"]))[-1] == ("deposit.reversed", "reversed")
    assert events_of(sessions, str(orphaned["id"]))[-1] == ("deposit.orphaned", "orphaned")
    assert chain_events(sessions, chain.name, tenants)[-1] == (
        operators.tenant_id,
        "chain.resumed",
        "running",
    )

    # The idle watcher follows on from the block resumed from: the deposit sent while halted
    # is credited, and the ledger holds what the chain holds.
    wait_for(
        lambda: (
            statuses(sessions, [keeper, loser]).count("credited") == 2
            and cursor_of(sessions, chain.name) >= chain.dev.devnet.block_number()
        ),
        "the deposit sent while halted is credited",
    )
    assert (
        chain.balance(keeper, chain.native).posted
        == 4 * ETH
        == chain.dev.devnet.balance(keeper_address)
    )
    assert chain.balance(loser, chain.native).posted == 0 == chain.dev.devnet.balance(loser_address)
    assert chain.balance(loser, chain.token).posted == 0
    assert chain.balance(loser, chain.token).pending_in == 0
    with unit_of_work(sessions) as session:
        assert all(check.ok for check in check_ledger(session))

    with pytest.raises(ResumeRefused, match="is not halted"):
        resume(chain, fork)


def halted(sessions: sessionmaker[Session], chain: str) -> bool:
    with unit_of_work(sessions) as session:
        return halted_state(session, chain) is not None


def test_a_step_that_meets_a_reorg_deeper_than_the_window_raises_for_the_halt(
    isolated_chain: IsolatedChain,
) -> None:
    chain = isolated_chain()
    watcher = chain.watcher(window_size=WINDOW)
    settle(watcher)
    chain.dev.mine(WINDOW + 2)
    settle(watcher)
    marker = {"from": chain.dev.accounts[9].address, "to": "0x" + secrets.token_hex(20)}
    chain.dev.devnet.reorg(WINDOW + 1, [(marker | {"value": "0x1"}, 0)])
    with pytest.raises(ReorgBeyondWindow, match=f"none of the last {WINDOW} stored blocks"):
        watcher.step()


def test_a_halt_is_recorded_once_with_its_first_reason(
    sessions: sessionmaker[Session],
) -> None:
    chain = Chain(f"test-{secrets.token_hex(3)}", 424242, "http://127.0.0.1:9", 3)
    with unit_of_work(sessions) as session:
        assert record_halt(session, chain, "first")
        assert not record_halt(session, chain, "second")
        state = halted_state(session, chain.name)
        assert state is not None
        assert state.reason == "first"


def test_readyz_answers_200_and_names_a_halted_chain(
    api_url: str, sessions: sessionmaker[Session]
) -> None:
    chain = Chain(f"test-{secrets.token_hex(3)}", 424242, "http://127.0.0.1:9", 3)
    with unit_of_work(sessions) as session:
        record_halt(session, chain, f"{chain.name}: none of the last 6 stored blocks ...")
    try:
        answer = httpx.get(f"{api_url}/readyz", timeout=10)
        assert answer.status_code == 200
        body = answer.json()
        assert body["status"] == "degraded"
        (part,) = [p for p in body["degraded"] if p["part"] == f"chain:{chain.name}"]
        assert part["reason"] == f"{chain.name}: none of the last 6 stored blocks ..."
    finally:
        with unit_of_work(sessions) as session:
            session.execute(text("DELETE FROM chain_states WHERE chain = :c"), {"c": chain.name})
    parts = httpx.get(f"{api_url}/readyz", timeout=10).json()["degraded"]
    assert f"chain:{chain.name}" not in [p["part"] for p in parts]


def test_chain_status_shows_cursor_head_lag_and_state_and_resume_refuses_a_running_chain(
    isolated_chain: IsolatedChain,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = isolated_chain()
    settle(chain.watcher(window_size=WINDOW))
    cursor = cursor_of(chain.sessions, chain.name)
    head = chain.dev.mine(2)
    catalogue = write_catalogue_file(chain, tmp_path / "assets.toml")
    with catalogue.open("a") as toml:  # a chain whose node does not answer
        toml.write(
            '\n[[chains]]\nname = "nowhere"\nchain_id = 424243\n'
            'rpc_url = "http://127.0.0.1:9"\nconfirmations = 3\n'
            '\n[[assets]]\ncode = "ETH-NOWHERE"\nkind = "native"\ndecimals = 18\n'
            'chain = "nowhere"\n'
        )
    monkeypatch.setenv("WALLET_DATABASE_URL", database_url)
    monkeypatch.setenv("WALLET_ASSETS_FILE", str(catalogue))
    monkeypatch.setenv("WALLET_DATA_DIR", str(tmp_path))
    with unit_of_work(chain.sessions) as session:
        record_halt(session, chain.config, f"{chain.name}: none of the last 6 stored blocks ...")

    shown = CliRunner().invoke(cli.app, ["chain", "status"])

    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    at = lines.index(next(line for line in lines if line.startswith(f"{chain.name}  halted since")))
    assert lines[at + 1] == f"  cursor {cursor}  head {head}  lag {head - cursor}"
    assert lines[at + 2] == f"  reason: {chain.name}: none of the last 6 stored blocks ..."
    assert "nowhere  running" in lines
    assert "  cursor none  head unreachable  lag ?" in lines

    refused = CliRunner().invoke(
        cli.app, ["chain", "resume", "--chain", "nowhere", "--from-block", "1", "--reason", "x"]
    )
    assert refused.exit_code == 1
    assert "not resumed: nowhere is not halted" in refused.output
    unknown = ["chain", "resume", "--chain", "moon", "--from-block", "1", "--reason", "x"]
    assert CliRunner().invoke(cli.app, unknown).exit_code == 2

    resume = ["chain", "resume", "--chain", chain.name, "--from-block", str(cursor)]
    resumed = CliRunner().invoke(
        cli.app, [*resume, "--reason", "the node was right", "--operator", "ops-bob"]
    )
    assert resumed.exit_code == 0, resumed.output
    shown = CliRunner().invoke(cli.app, ["chain", "status"])
    assert f"by ops-bob from block {cursor} (0 orphaned, 0 reversed): the node was right" in (
        shown.output
    )


def test_a_node_serving_another_chain_halts_the_chain_with_the_reason(
    isolated_chain: IsolatedChain, running: Callable[[LiveChain], RunningWatcher]
) -> None:
    chain = isolated_chain()
    config = dataclasses.replace(chain.config, chain_id=chain.config.chain_id + 1)
    catalogue = Catalogue(
        chains={**chain.catalogue.chains, chain.name: config}, assets=chain.catalogue.assets
    )
    watcher = running(dataclasses.replace(chain, catalogue=catalogue))

    wait_for(lambda: halted(chain.sessions, chain.name), "the watcher halts")

    with unit_of_work(chain.sessions) as session:
        state = halted_state(session, chain.name)
        assert state is not None
        assert f"serves chain {chain.config.chain_id}, not {config.chain_id}" in str(state.reason)
    assert watcher.thread.is_alive()
    with unit_of_work(chain.sessions) as session:
        session.execute(text("DELETE FROM chain_states WHERE chain = :c"), {"c": chain.name})
