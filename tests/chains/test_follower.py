"""ChainFollower against a real Anvil: deposits found with exact amounts, reorgs, node outages."""

import itertools
import secrets

import pytest

from chains import (
    AddressSet,
    Advance,
    BlockHeader,
    ChainFollower,
    NativeTransfer,
    NodeUnreachable,
    Rollback,
    RpcClient,
    StepResult,
    TokenTransfer,
    TraceMode,
    WrongChain,
    fetch_header,
    next_window,
)
from chains.devnet import DevChain, Devnet, encode_call

WINDOW = 64
ETH = 10**18
USDC = 10**6


def fresh_address() -> str:
    return "0x" + secrets.token_hex(20)


def marker_tx(chain: DevChain) -> dict[str, str]:
    """A transaction that makes a re-mined block differ from the one it replaces.

    Anvil mines empty blocks with the same parent and timestamp to the same hash, so a "reorg"
    without new content would not change the chain at all.
    """
    return {"from": chain.accounts[9].address, "to": fresh_address(), "value": "0x1"}


class Watcher:
    """Drives a follower from the current head the way the wallet does: window in, result out."""

    def __init__(
        self, chain: DevChain, watched: AddressSet, trace_mode: TraceMode = TraceMode.NONE
    ) -> None:
        self.follower = ChainFollower(
            chain.rpc, tokens={chain.token_address: "USDC"}, trace_mode=trace_mode
        )
        self.watched = watched
        head = fetch_header(chain.rpc)
        assert head is not None
        self.window: list[BlockHeader] = [head]

    def step(self, max_blocks: int = 250) -> StepResult:
        result = self.follower.step(self.window, self.watched, max_blocks)
        self.window = next_window(self.window, result, WINDOW)
        return result

    def catch_up(self) -> tuple[list[NativeTransfer], list[TokenTransfer]]:
        natives: list[NativeTransfer] = []
        tokens: list[TokenTransfer] = []
        while True:
            result = self.step()
            assert isinstance(result, Advance), result
            if not result.blocks:
                return natives, tokens
            for block in result.blocks:
                natives.extend(block.native_transfers)
                tokens.extend(block.token_transfers)


def test_eth_and_usdc_deposits_are_found_with_exact_amounts(devnet: DevChain) -> None:
    alice, bob = fresh_address(), fresh_address()
    watcher = Watcher(devnet, AddressSet([alice, bob]))
    sender = devnet.accounts[1].address
    eth_tx = devnet.send_eth(sender, alice, 1_234_567_890_123_456_789)
    usdc_tx = devnet.send_tokens(sender, bob, 987_654_321)
    block = devnet.mine()

    natives, tokens = watcher.catch_up()

    assert natives == [
        NativeTransfer(
            block_number=block,
            block_hash=watcher.window[-1].hash,
            tx_hash=eth_tx,
            index=-1,
            from_address=sender,
            to_address=alice,
            amount=1_234_567_890_123_456_789,
        )
    ]
    [token] = tokens
    assert (token.tx_hash, token.to_address, token.amount) == (usdc_tx, bob, 987_654_321)
    assert (token.asset, token.token, token.from_address) == ("USDC", devnet.token_address, sender)
    assert token.identity == (usdc_tx, 0)
    assert isinstance(token.amount, int) and isinstance(natives[0].amount, int)


def test_many_deposits_in_one_block_and_unwatched_addresses_ignored(devnet: DevChain) -> None:
    watched = [fresh_address() for _ in range(20)]
    unwatched = [fresh_address() for _ in range(10)]
    watcher = Watcher(devnet, AddressSet(watched))
    senders = [a.address for a in devnet.accounts[1:6]]
    expected_eth: dict[str, int] = {}
    expected_usdc: dict[str, int] = {}
    for i, to in enumerate(watched):
        sender = senders[i % len(senders)]
        expected_eth[devnet.send_eth(sender, to, (i + 1) * ETH // 1000 + i)] = (
            i + 1
        ) * ETH // 1000 + i
        expected_usdc[devnet.send_tokens(sender, to, (i + 1) * USDC + 7)] = (i + 1) * USDC + 7
    for to in unwatched:
        devnet.send_eth(senders[0], to, ETH)
        devnet.send_tokens(senders[1], to, USDC)
    block = devnet.mine()

    natives, tokens = watcher.catch_up()

    assert {t.tx_hash: t.amount for t in natives} == expected_eth
    assert {t.tx_hash: t.amount for t in tokens} == expected_usdc
    assert {t.block_number for t in natives} | {t.block_number for t in tokens} == {block}
    receivers = {t.to_address for t in natives} | {t.to_address for t in tokens}
    assert receivers == set(watched)
    identities = [t.identity for t in natives] + [t.identity for t in tokens]
    assert len(set(identities)) == 40


def test_failed_transactions_are_ignored(devnet: DevChain) -> None:
    # The forwarder has no receive function, so plain ETH to it reverts (status 0).
    poor = fresh_address()
    victim = fresh_address()
    watcher = Watcher(devnet, AddressSet([devnet.forwarder_address, victim]))
    sender = devnet.accounts[2].address
    eth_tx = devnet.send_eth(sender, devnet.forwarder_address, ETH, gas=60_000)
    devnet.devnet.set_balance(poor, ETH)
    devnet.rpc.call("anvil_impersonateAccount", poor)
    token_tx = devnet.devnet.transfer_tokens(devnet.token_address, poor, victim, 5, gas=100_000)
    devnet.mine()
    devnet.rpc.call("anvil_stopImpersonatingAccount", poor)
    assert devnet.devnet.receipt(eth_tx)["status"] == "0x0"
    assert devnet.devnet.receipt(token_tx)["status"] == "0x0"

    assert watcher.catch_up() == ([], [])


@pytest.mark.parametrize("mode", [TraceMode.PARITY, TraceMode.CALL_TRACER])
def test_internal_eth_through_a_contract_is_found_in_traces(
    devnet: DevChain, mode: TraceMode
) -> None:
    alice, bob = fresh_address(), fresh_address()
    watcher = Watcher(devnet, AddressSet([alice, bob]), mode)
    plain = Watcher(devnet, AddressSet([alice, bob]), TraceMode.NONE)
    sender = devnet.accounts[3].address
    forwarded = devnet.forward_eth(sender, alice, 3 * ETH + 17)
    undone = devnet.devnet.forward_eth_in_reverted_call(devnet.forwarder_address, sender, bob, ETH)
    devnet.mine()
    assert devnet.devnet.receipt(undone)["status"] == "0x1"
    assert devnet.devnet.balance(bob) == 0

    natives, tokens = watcher.catch_up()

    assert tokens == []
    [internal] = natives
    assert internal.identity == (forwarded, -2)
    assert internal.is_internal
    assert (internal.from_address, internal.to_address) == (devnet.forwarder_address, alice)
    assert internal.amount == 3 * ETH + 17
    assert plain.catch_up() == ([], [])  # without traces internal transfers are invisible


@pytest.mark.parametrize("mode", [TraceMode.PARITY, TraceMode.CALL_TRACER])
def test_internal_eth_of_a_failed_transaction_is_ignored(devnet: DevChain, mode: TraceMode) -> None:
    # forwardThenRevert sends ETH in a call that succeeds, then the top-level call reverts.
    alice = fresh_address()
    watcher = Watcher(devnet, AddressSet([alice]), mode)
    data = encode_call("forwardThenRevert(address)", alice)
    tx = devnet.devnet.send_transaction(
        devnet.accounts[3].address, devnet.forwarder_address, value=ETH, data=data, gas=100_000
    )
    devnet.mine()
    assert devnet.devnet.receipt(tx)["status"] == "0x0"

    assert watcher.catch_up() == ([], [])


def test_advance_reports_the_head_for_confirmations(devnet: DevChain) -> None:
    watcher = Watcher(devnet, AddressSet())
    head = devnet.mine(5)

    result = watcher.step(max_blocks=2)

    assert isinstance(result, Advance)
    assert result.head == head
    assert result.headers[-1].number == head - 3


def test_a_step_given_the_head_fetches_no_block_above_it(devnet: DevChain) -> None:
    watcher = Watcher(devnet, AddressSet())
    start = watcher.window[-1].number
    devnet.mine(5)

    result = watcher.follower.step(watcher.window, watcher.watched, head=start + 2)

    assert isinstance(result, Advance)
    assert result.head == start + 2
    assert [h.number for h in result.headers] == [start + 1, start + 2]


def test_a_follower_for_another_chain_id_refuses_the_node(devnet: DevChain) -> None:
    follower = ChainFollower(devnet.rpc, chain_id=1)
    with pytest.raises(WrongChain, match="31337"):
        follower.step([], AddressSet())
    assert ChainFollower(devnet.rpc, chain_id=31337, start_block=10**9).step(
        [], AddressSet()
    ) == Advance((), head=devnet.devnet.block_number())


def test_catch_up_advances_in_linked_batches(devnet: DevChain) -> None:
    watcher = Watcher(devnet, AddressSet())
    start = watcher.window[-1].number
    devnet.mine(300)  # Anvil mines more slowly the longer its chain: keep the shared one short

    first = watcher.step(max_blocks=120)

    assert isinstance(first, Advance)
    assert [h.number for h in first.headers] == list(range(start + 1, start + 121))
    assert all(b.parent_hash == a.hash for a, b in itertools.pairwise(first.headers))
    assert len(watcher.window) == WINDOW
    assert watcher.window[-1] == first.headers[-1]
    watcher.catch_up()
    assert watcher.window[-1].number == start + 300


def test_reorg_is_reported_as_rollback_to_the_common_ancestor(devnet: DevChain) -> None:
    alice, bob = fresh_address(), fresh_address()
    watcher = Watcher(devnet, AddressSet([alice, bob]))
    ancestor = watcher.window[-1]
    sender = devnet.accounts[4].address
    devnet.send_eth(sender, alice, 5 * ETH)
    devnet.mine(3)
    natives, _ = watcher.catch_up()
    assert [t.to_address for t in natives] == [alice]

    devnet.devnet.reorg(3, [({"from": sender, "to": bob, "value": hex(2 * ETH)}, 1)])
    # Same height as before: found by checking the tip, not by a new block's parent.
    assert devnet.devnet.block_number() == ancestor.number + 3

    result = watcher.step()
    assert result == Rollback(ancestor=ancestor)
    assert watcher.window[-1] == ancestor
    natives, _ = watcher.catch_up()
    assert [(t.to_address, t.amount, t.block_number) for t in natives] == [
        (bob, 2 * ETH, ancestor.number + 2)
    ]


def test_reorg_seen_through_a_new_blocks_parent(devnet: DevChain) -> None:
    watcher = Watcher(devnet, AddressSet())
    devnet.mine(4)
    watcher.catch_up()
    ancestor = watcher.window[-3]
    devnet.devnet.reorg(2, [(marker_tx(devnet), 0)])
    devnet.mine(2)

    assert watcher.step() == Rollback(ancestor=ancestor)
    watcher.catch_up()
    assert watcher.window[-1] == fetch_header(devnet.rpc)


def test_reorg_deeper_than_the_window_has_no_ancestor(devnet: DevChain) -> None:
    devnet.mine(5)
    follower = ChainFollower(devnet.rpc)
    head = devnet.devnet.block_number()
    window = [h for n in (head - 1, head) if (h := fetch_header(devnet.rpc, n)) is not None]
    devnet.devnet.reorg(3, [(marker_tx(devnet), 0)])

    result = follower.step(window, AddressSet())

    assert result == Rollback(ancestor=None)
    assert next_window(window, result, WINDOW) == []


def test_a_node_behind_the_window_is_waited_for_then_rolled_back(devnet: DevChain) -> None:
    watcher = Watcher(devnet, AddressSet())
    devnet.mine(3)
    watcher.catch_up()
    tip = watcher.window[-1]
    devnet.rpc.call("anvil_rollback", 2)  # the chain only got shorter: nothing replaced yet

    assert watcher.step() == Advance((), head=tip.number - 2)
    assert watcher.window[-1] == tip

    ancestor = watcher.window[-3]
    devnet.rpc.call("eth_sendTransaction", marker_tx(devnet))
    devnet.mine(3)  # new, different blocks at the heights we hold
    assert watcher.step() == Rollback(ancestor=ancestor)


def test_window_must_be_consecutive(devnet: DevChain) -> None:
    a = fetch_header(devnet.rpc, 1)
    b = fetch_header(devnet.rpc, 3)
    assert a is not None and b is not None
    with pytest.raises(ValueError, match="consecutive"):
        ChainFollower(devnet.rpc).step([a, b], AddressSet())


def test_node_down_raises_unreachable_instead_of_returning_nothing() -> None:
    with Devnet() as devnet, RpcClient(devnet.rpc_url, connect_timeout=0.5) as rpc:
        devnet.mine(2)
        follower = ChainFollower(rpc)
        head = fetch_header(rpc)
        assert head is not None
        assert follower.step([head], AddressSet()) == Advance((), head=2)
        devnet.stop()
        with pytest.raises(NodeUnreachable):
            follower.step([head], AddressSet())
        with pytest.raises(NodeUnreachable):
            follower.step([], AddressSet())


def test_deposits_on_one_chain_are_not_seen_on_another(
    devnet: DevChain, second_devnet: DevChain
) -> None:
    alice = fresh_address()
    on_first = Watcher(devnet, AddressSet([alice]))
    on_second = Watcher(second_devnet, AddressSet([alice]))
    second_devnet.send_eth(second_devnet.accounts[1].address, alice, 42)
    second_devnet.mine()
    devnet.mine()

    assert on_first.catch_up() == ([], [])
    natives, _ = on_second.catch_up()
    assert [t.amount for t in natives] == [42]


def test_a_transaction_signed_with_a_dev_key_is_found(devnet: DevChain) -> None:
    from eth_account import Account  # noqa: PLC0415 - only this test signs locally
    from eth_utils.address import to_checksum_address  # noqa: PLC0415

    alice = fresh_address()
    watcher = Watcher(devnet, AddressSet([alice]))
    account = devnet.accounts[7]
    signed = Account.sign_transaction(
        {
            "type": 2,
            "chainId": devnet.chain_id,
            "nonce": devnet.devnet.nonce(account.address),
            "to": to_checksum_address(alice),  # eth-account rejects lowercase addresses
            "value": 777,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
        },
        account.private_key,
    )
    tx_hash = devnet.devnet.send_raw_transaction(signed.raw_transaction)
    devnet.mine()

    natives, _ = watcher.catch_up()
    assert [(t.tx_hash, t.from_address, t.amount) for t in natives] == [
        (tx_hash, account.address, 777)
    ]
