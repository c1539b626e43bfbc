"""The watcher's step on real Anvil nodes and PostgreSQL: seen, credited, orphaned, reversed."""

import logging
import secrets

import pytest
from sqlalchemy import text

from chains import IncompleteLogs, RpcClient, TraceMode
from tests.factories import Factory
from tests.rpc_proxy import LogDroppingProxy
from tests.wallet.deposits.conftest import (
    CONFIRMATIONS,
    IsolatedChain,
    LiveChain,
    deposits_of,
    events_of,
    external_refs,
    settle,
)
from wallet.assets.service import Catalogue, Chain
from wallet.database import unit_of_work
from wallet.deposits.errors import StaleWindow
from wallet.deposits.models import DepositStatus
from wallet.deposits.watcher import DepositWatcher, chain_follower, poll_interval_for
from wallet.ledger.reconcile import check_ledger
from wallet.transfers.service import TransferRequest

ETH = 10**18
USDC = 10**6

SEEN, CREDITED = DepositStatus.SEEN.value, DepositStatus.CREDITED.value
ORPHANED, REVERSED = DepositStatus.ORPHANED.value, DepositStatus.REVERSED.value
BELOW_MINIMUM = DepositStatus.BELOW_MINIMUM.value


def fresh_address() -> str:
    return "0x" + secrets.token_hex(20)


def marker_tx(chain: LiveChain) -> dict[str, str]:
    """A transaction that makes a re-mined block differ from the block it replaces."""
    return {"from": chain.dev.accounts[9].address, "to": fresh_address(), "value": "0x1"}


def test_eth_and_usdc_are_pending_at_once_then_credited_after_the_confirmations(
    factory: Factory, any_chain: LiveChain
) -> None:
    chain = any_chain
    watcher = chain.watcher()
    settle(watcher)
    wallet = factory.wallet()
    address = chain.address(factory, wallet)
    sender = chain.dev.accounts[1].address
    eth_tx = chain.dev.send_eth(sender, address, 1_234_567_890_123_456_789)
    usdc_tx = chain.dev.send_tokens(sender, address, 987_654_321)
    block = chain.dev.mine()

    settle(watcher)

    deposits = deposits_of(chain.sessions, [wallet])
    assert [(d["asset"], d["amount"], d["tx_hash"], d["status"]) for d in deposits] == [
        (chain.native, 1_234_567_890_123_456_789, eth_tx, SEEN),
        (chain.token, 987_654_321, usdc_tx, SEEN),
    ]
    assert [(d["log_index"], d["block_number"]) for d in deposits] == [(-1, block), (0, block)]
    assert all(d["confirmations"] == 1 and d["hold_id"] is not None for d in deposits)
    eth, usdc = chain.balance(wallet, chain.native), chain.balance(wallet, chain.token)
    assert (eth.pending_in, eth.posted, eth.available) == (1_234_567_890_123_456_789, 0, 0)
    assert (usdc.pending_in, usdc.posted, usdc.available) == (987_654_321, 0, 0)

    for confirmations in range(2, CONFIRMATIONS):
        chain.dev.mine()
        settle(watcher)
        assert {d["status"] for d in deposits_of(chain.sessions, [wallet])} == {SEEN}
        assert {d["confirmations"] for d in deposits_of(chain.sessions, [wallet])} == {
            confirmations
        }

    chain.dev.mine()
    settle(watcher)

    deposits = deposits_of(chain.sessions, [wallet])
    assert {d["status"] for d in deposits} == {CREDITED}
    eth, usdc = chain.balance(wallet, chain.native), chain.balance(wallet, chain.token)
    assert (eth.pending_in, eth.posted, eth.available) == (0, 1_234_567_890_123_456_789, eth.posted)
    assert (usdc.pending_in, usdc.posted, usdc.available) == (0, 987_654_321, usdc.posted)
    for deposit in deposits:
        assert events_of(chain.sessions, str(deposit["id"])) == [
            ("deposit.seen", SEEN),
            ("deposit.credited", CREDITED),
        ]
    assert sorted(external_refs(chain.sessions, [str(d["id"]) for d in deposits])) == sorted(
        [f"{chain.name}:{eth_tx}:-1", f"{chain.name}:{usdc_tx}:0"]
    )

    chain.dev.mine(2)
    settle(watcher)
    assert chain.balance(wallet, chain.native).posted == 1_234_567_890_123_456_789


def test_many_deposits_in_one_block_to_many_wallets_and_unknown_addresses_ignored(
    factory: Factory, chain: LiveChain
) -> None:
    watcher = chain.watcher()
    settle(watcher)
    wallets = [factory.wallet() for _ in range(15)]
    addresses = [chain.address(factory, w) for w in wallets]
    unknown = [fresh_address() for _ in range(5)]
    senders = [a.address for a in chain.dev.accounts[1:6]]
    expected: dict[tuple[str, str], int] = {}
    for i, (wallet, address) in enumerate(zip(wallets, addresses, strict=True)):
        sender = senders[i % len(senders)]
        chain.dev.send_eth(sender, address, (i + 1) * ETH // 100 + i)
        chain.dev.send_tokens(sender, address, (i + 1) * USDC + i)
        expected[(wallet, chain.native)] = (i + 1) * ETH // 100 + i
        expected[(wallet, chain.token)] = (i + 1) * USDC + i
    for to in unknown:
        chain.dev.send_eth(senders[0], to, ETH)
        chain.dev.send_tokens(senders[1], to, USDC)
    block = chain.dev.mine()
    chain.dev.mine(CONFIRMATIONS - 1)

    settle(watcher)

    deposits = deposits_of(chain.sessions, wallets)
    assert len(deposits) == 30
    assert {d["block_number"] for d in deposits} == {block}
    assert {d["status"] for d in deposits} == {CREDITED}
    for (wallet, asset), amount in expected.items():
        balance = chain.balance(wallet, asset)
        assert (balance.posted, balance.pending_in) == (amount, 0)
    with unit_of_work(chain.sessions) as session:
        strays = session.execute(
            text("SELECT count(*) FROM deposits WHERE to_address = ANY(:a)"), {"a": unknown}
        ).scalar_one()
    assert strays == 0


def test_dust_below_the_minimum_is_recorded_and_reported_but_never_credited(
    factory: Factory, chain: LiveChain, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = chain.watcher()
    settle(watcher)
    wallet = factory.wallet()
    address = chain.address(factory, wallet)
    sender = chain.dev.accounts[2].address
    min_eth = chain.catalogue.asset(chain.native).min_deposit
    min_usdc = chain.catalogue.asset(chain.token).min_deposit
    chain.dev.send_eth(sender, address, min_eth - 1)
    chain.dev.send_tokens(sender, address, min_usdc - 1)
    chain.dev.send_tokens(sender, address, min_usdc)  # exactly the minimum is credited
    chain.dev.mine(CONFIRMATIONS + 2)

    with caplog.at_level(logging.WARNING, logger="wallet.deposits"):
        settle(watcher)

    deposits = deposits_of(chain.sessions, [wallet])
    assert [(d["amount"], d["status"]) for d in deposits] == [
        (min_eth - 1, BELOW_MINIMUM),
        (min_usdc - 1, BELOW_MINIMUM),
        (min_usdc, CREDITED),
    ]
    assert all(d["hold_id"] is None for d in deposits[:2])
    eth, usdc = chain.balance(wallet, chain.native), chain.balance(wallet, chain.token)
    assert (eth.posted, eth.pending_in) == (0, 0)
    assert (usdc.posted, usdc.pending_in) == (min_usdc, 0)
    assert events_of(chain.sessions, str(deposits[0]["id"])) == [("deposit.seen", BELOW_MINIMUM)]
    assert sum("below the minimum" in r.getMessage() for r in caplog.records) == 2


def test_a_reorg_before_the_confirmations_orphans_and_a_re_mined_transfer_is_credited_once(
    factory: Factory, chain: LiveChain
) -> None:
    watcher = chain.watcher()
    settle(watcher)
    wallet = factory.wallet()
    address = chain.address(factory, wallet)
    sender = chain.dev.accounts[3].address
    eth_tx = chain.dev.send_eth(sender, address, 3 * ETH)
    usdc_tx = chain.dev.send_tokens(sender, address, 250 * USDC)
    chain.dev.mine(CONFIRMATIONS - 1)
    settle(watcher)
    assert {d["status"] for d in deposits_of(chain.sessions, [wallet])} == {SEEN}
    raw = [chain.raw_transaction(tx) for tx in (eth_tx, usdc_tx)]

    chain.dev.devnet.reorg(CONFIRMATIONS - 1, [(marker_tx(chain), 0)])
    outcomes = settle(watcher)

    assert any(o.rolled_back_to is not None for o in outcomes)
    deposits = deposits_of(chain.sessions, [wallet])
    assert {d["status"] for d in deposits} == {ORPHANED}
    eth = chain.balance(wallet, chain.native)
    assert (eth.pending_in, eth.posted) == (0, 0)

    chain.dev.mine(CONFIRMATIONS + 1)  # the old block would have been confirmed by now
    settle(watcher)
    assert {d["status"] for d in deposits_of(chain.sessions, [wallet])} == {ORPHANED}
    assert chain.balance(wallet, chain.native).posted == 0

    for tx in raw:  # the same signed transactions, mined again in a new block
        chain.dev.rpc.call("eth_sendRawTransaction", tx)
    block = chain.dev.mine()
    settle(watcher)
    again = deposits_of(chain.sessions, [wallet])
    assert [(d["id"], d["status"], d["block_number"], d["confirmations"]) for d in again] == [
        (deposits[0]["id"], SEEN, block, 1),
        (deposits[1]["id"], SEEN, block, 1),
    ]
    assert chain.balance(wallet, chain.native).pending_in == 3 * ETH

    chain.dev.mine(CONFIRMATIONS - 1)
    settle(watcher)

    assert {d["status"] for d in deposits_of(chain.sessions, [wallet])} == {CREDITED}
    eth, usdc = chain.balance(wallet, chain.native), chain.balance(wallet, chain.token)
    assert (eth.posted, eth.pending_in, usdc.posted, usdc.pending_in) == (3 * ETH, 0, 250 * USDC, 0)
    assert events_of(chain.sessions, str(deposits[0]["id"])) == [
        ("deposit.seen", SEEN),
        ("deposit.orphaned", ORPHANED),
        ("deposit.seen", SEEN),
        ("deposit.credited", CREDITED),
    ]
    assert len(external_refs(chain.sessions, [str(d["id"]) for d in deposits])) == 2


def test_a_reorg_deeper_than_the_confirmations_reverses_credits_and_raises_an_alert(
    factory: Factory,
    isolated_chain: IsolatedChain,
    catalogue: Catalogue,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain = isolated_chain()
    watcher = chain.watcher()
    settle(watcher)
    chain.dev.mine(2)  # blocks the reorg leaves in place
    settle(watcher)
    keeper, spender, friend = factory.wallet(), factory.wallet(), factory.wallet()
    keeper_address = chain.address(factory, keeper)
    spender_address = chain.address(factory, spender)
    sender = chain.dev.accounts[1].address
    eth_tx = chain.dev.send_eth(sender, keeper_address, 5 * ETH)
    chain.dev.send_tokens(sender, spender_address, 100 * USDC)
    chain.dev.mine(CONFIRMATIONS)
    settle(watcher)
    assert {d["status"] for d in deposits_of(chain.sessions, [keeper, spender])} == {CREDITED}
    raw_eth = chain.raw_transaction(eth_tx)
    # The spender spends 60 of its 100 USDC.
    spent = TransferRequest(factory.tenant_id, spender, friend, chain.token, 60 * USDC)
    factory.transfer(spent, chain.catalogue)

    chain.dev.devnet.reorg(CONFIRMATIONS + 1, [(marker_tx(chain), 0)])
    with caplog.at_level(logging.CRITICAL, logger="wallet.deposits"):
        settle(watcher)

    deposits = deposits_of(chain.sessions, [keeper, spender])
    assert {d["status"] for d in deposits} == {REVERSED}
    assert chain.balance(keeper, chain.native).posted == 0
    assert chain.balance(spender, chain.token).posted == 0
    assert chain.balance(friend, chain.token).posted == 60 * USDC
    with unit_of_work(chain.sessions) as session:
        shortfall = session.execute(
            text("SELECT posted FROM accounts WHERE system_name = :name AND asset = :asset"),
            {"name": f"reorg-shortfall:{chain.name}", "asset": chain.token},
        ).scalar_one()
        assert all(check.ok for check in check_ledger(session))
    assert shortfall == -60 * USDC
    assert events_of(chain.sessions, str(deposits[0]["id"]))[-1] == ("deposit.reversed", REVERSED)
    assert sum(r.getMessage().startswith("ALERT") for r in caplog.records) == 2

    chain.dev.rpc.call("eth_sendRawTransaction", raw_eth)
    chain.dev.mine(CONFIRMATIONS)
    settle(watcher)

    keeper_deposit = deposits_of(chain.sessions, [keeper])[0]
    assert keeper_deposit["status"] == CREDITED
    assert chain.balance(keeper, chain.native).posted == 5 * ETH
    assert external_refs(chain.sessions, [str(keeper_deposit["id"])]) == [
        f"{chain.name}:{eth_tx}:-1",
        f"{chain.name}:{eth_tx}:-1:1",
    ]


def test_a_chain_back_on_the_block_it_left_credits_its_deposit_once(
    factory: Factory, isolated_chain: IsolatedChain
) -> None:
    chain = isolated_chain()
    rpc = chain.dev.rpc
    watcher = chain.watcher()
    settle(watcher)
    wallet = factory.wallet()
    address = chain.address(factory, wallet)
    before = rpc.call("evm_snapshot")
    eth_tx = chain.dev.send_eth(chain.dev.accounts[1].address, address, 2 * ETH)
    raw = chain.raw_transaction(eth_tx)
    number = chain.dev.mine()
    block = rpc.call("eth_getBlockByNumber", hex(number), False)
    settle(watcher)
    assert [d["status"] for d in deposits_of(chain.sessions, [wallet])] == [SEEN]

    rpc.call("evm_revert", before)  # another branch, longer, without the deposit
    left = rpc.call("evm_snapshot")
    chain.dev.mine(2)
    settle(watcher)
    assert [d["status"] for d in deposits_of(chain.sessions, [wallet])] == [ORPHANED]

    # The chain returns to the branch it left: the same block, to the bit, then more.
    rpc.call("evm_revert", left)
    rpc.call("anvil_setNextBlockBaseFeePerGas", block["baseFeePerGas"])
    rpc.call("evm_setNextBlockTimestamp", block["timestamp"])
    rpc.call("eth_sendRawTransaction", raw)
    assert chain.dev.mine() == number
    assert rpc.call("eth_getBlockByNumber", hex(number), False)["hash"] == block["hash"]
    chain.dev.mine(CONFIRMATIONS + 2)
    settle(watcher)

    (deposit,) = deposits_of(chain.sessions, [wallet])
    assert (deposit["status"], deposit["block_hash"]) == (CREDITED, block["hash"])
    assert chain.balance(wallet, chain.native).posted == 2 * ETH
    assert len(external_refs(chain.sessions, [str(deposit["id"])])) == 1


def test_eth_sent_by_a_contract_is_found_through_traces(factory: Factory, chain: LiveChain) -> None:
    watcher = chain.watcher(trace_mode=TraceMode.PARITY)
    settle(watcher)
    wallet = factory.wallet()
    address = chain.address(factory, wallet)
    tx = chain.dev.forward_eth(chain.dev.accounts[4].address, address, 7 * ETH // 10)
    chain.dev.mine(CONFIRMATIONS)

    settle(watcher)

    [deposit] = deposits_of(chain.sessions, [wallet])
    assert (deposit["tx_hash"], deposit["log_index"], deposit["amount"]) == (tx, -2, 7 * ETH // 10)
    assert deposit["status"] == CREDITED


def test_a_watcher_resumes_from_the_stored_cursor(factory: Factory, chain: LiveChain) -> None:
    first = chain.watcher()
    settle(first)
    wallet = factory.wallet()
    address = chain.address(factory, wallet)
    chain.dev.send_eth(chain.dev.accounts[5].address, address, ETH)
    chain.dev.mine()
    settle(first)
    tip = first.window[-1]
    chain.dev.mine(CONFIRMATIONS)

    second = chain.watcher()  # a new process: nothing in memory
    outcomes = settle(second)

    resumed = outcomes[0]
    assert resumed.tip is not None and resumed.tip.number - resumed.blocks == tip.number
    assert second.window[-1].number == tip.number + CONFIRMATIONS
    assert [d["status"] for d in deposits_of(chain.sessions, [wallet])] == [CREDITED]


def test_a_step_longer_than_the_header_window_credits_every_deposit_in_it(
    factory: Factory, isolated_chain: IsolatedChain
) -> None:
    chain = isolated_chain()
    watcher = chain.watcher(window_size=CONFIRMATIONS + 2, batch_blocks=60)
    settle(watcher)
    wallet = factory.wallet()
    address = chain.address(factory, wallet)
    for _ in range(10):
        chain.dev.send_eth(chain.dev.accounts[1].address, address, ETH)
        chain.dev.mine(5)

    outcomes = settle(watcher)

    assert [o.blocks for o in outcomes if o.blocks] == [50]
    deposits = deposits_of(chain.sessions, [wallet])
    assert [d["status"] for d in deposits] == [CREDITED] * 10
    assert chain.balance(wallet, chain.native).posted == 10 * ETH
    assert len(watcher.window) == CONFIRMATIONS + 2
    with unit_of_work(chain.sessions) as session:
        stored = session.execute(
            text("SELECT count(*) FROM chain_headers WHERE chain = :c"), {"c": chain.name}
        ).scalar_one()
    assert stored == CONFIRMATIONS + 2


def test_a_catch_up_over_many_steps_credits_each_deposit_once(
    factory: Factory, isolated_chain: IsolatedChain
) -> None:
    # Each step's write overlaps the next step's fetch: every deposit must still be recorded
    # once, with one credit and one event, and the window must end at the head.
    chain = isolated_chain()
    watcher = chain.watcher(batch_blocks=7)
    settle(watcher)
    wallets = [factory.wallet() for _ in range(4)]
    addresses = [chain.address(factory, w) for w in wallets]
    sender = chain.dev.accounts[1].address
    for i in range(12):
        chain.dev.send_eth(sender, addresses[i % 4], ETH + i)
        chain.dev.send_tokens(sender, addresses[(i + 1) % 4], USDC + i)
        chain.dev.mine(3)

    outcomes = settle(watcher)

    assert len([o for o in outcomes if o.blocks]) >= 5
    deposits = deposits_of(chain.sessions, wallets)
    assert len(deposits) == 24
    assert {d["status"] for d in deposits} == {CREDITED}
    ids = [str(d["id"]) for d in deposits]
    assert len(external_refs(chain.sessions, ids)) == 24
    assert all(events_of(chain.sessions, i)[-1] == ("deposit.credited", CREDITED) for i in ids)
    assert all(
        [e for e, _ in events_of(chain.sessions, i)].count("deposit.credited") == 1 for i in ids
    )
    for i, wallet in enumerate(wallets):
        eth = sum(ETH + j for j in range(12) if j % 4 == i)
        usdc = sum(USDC + j for j in range(12) if (j + 1) % 4 == i)
        assert chain.balance(wallet, chain.native).posted == eth
        assert chain.balance(wallet, chain.token).posted == usdc
    assert watcher.window[-1].number == chain.dev.devnet.block_number()
    with unit_of_work(chain.sessions) as session:
        assert all(check.ok for check in check_ledger(session))


def test_a_watcher_fenced_out_while_catching_up_drops_what_it_fetched_ahead(
    factory: Factory, isolated_chain: IsolatedChain
) -> None:
    chain = isolated_chain()
    first = chain.watcher(batch_blocks=5)
    settle(first)
    wallet = factory.wallet()
    address = chain.address(factory, wallet)
    chain.dev.mine(4)
    chain.dev.send_eth(chain.dev.accounts[1].address, address, ETH)
    chain.dev.mine(20)
    first.step()  # writes 5 blocks and fetches the next 5 meanwhile
    second = chain.watcher(batch_blocks=50)
    settle(second)  # another watcher records everything, past what `first` fetched

    with pytest.raises(StaleWindow):
        first.step()  # the fetched blocks are no longer after the stored cursor
    first.load()
    outcomes = settle(first)

    assert [o.blocks for o in outcomes] == [0]
    [deposit] = deposits_of(chain.sessions, [wallet])
    assert deposit["status"] == CREDITED
    assert chain.balance(wallet, chain.native).posted == ETH
    assert len(external_refs(chain.sessions, [str(deposit["id"])])) == 1


def test_a_block_whose_logs_a_node_leaves_out_is_retried_never_skipped(
    factory: Factory, chain: LiveChain
) -> None:
    settle(chain.watcher())
    wallet = factory.wallet()
    address = chain.address(factory, wallet)
    chain.dev.send_tokens(chain.dev.accounts[1].address, address, 3 * USDC)
    chain.dev.mine()
    with (
        LogDroppingProxy(chain.dev.rpc_url, drops=100).running() as proxy,
        RpcClient(proxy.url) as rpc,
    ):
        source = chain_follower(chain.catalogue, chain.name, rpc)
        lagging = DepositWatcher(chain.sessions, chain.catalogue, chain.name, source)
        cursor = _cursor(chain)

        with pytest.raises(IncompleteLogs):
            lagging.step()

        assert _cursor(chain) == cursor
        assert deposits_of(chain.sessions, [wallet]) == []
        proxy.drops = 1  # the node catches up after one more empty answer
        settle(lagging)

    [deposit] = deposits_of(chain.sessions, [wallet])
    assert (deposit["amount"], deposit["status"]) == (3 * USDC, SEEN)


def _cursor(chain: LiveChain) -> int:
    with unit_of_work(chain.sessions) as session:
        number: int = session.execute(
            text("SELECT block_number FROM chain_cursors WHERE chain = :chain"),
            {"chain": chain.name},
        ).scalar_one()
    return number


@pytest.mark.parametrize(
    ("block_time", "poll_interval"), [(12.0, 0.5), (2.0, 0.4), (1.0, 0.2), (0.2, 0.1), (0.0, 0.1)]
)
def test_the_watcher_polls_a_fifth_of_the_block_time_between_a_tenth_and_half_a_second(
    block_time: float, poll_interval: float
) -> None:
    chain = Chain("c", 1, "http://127.0.0.1:1", confirmations=1, block_time=block_time)
    assert poll_interval_for(chain) == pytest.approx(poll_interval)
