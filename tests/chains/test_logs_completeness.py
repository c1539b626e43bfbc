"""The follower notices logs a node leaves out: each block's `logsBloom` says where to look.

A lagging replica behind a load balancer can answer `eth_getLogs` with `[]` for blocks it
serves headers of. The bloom of a block holding a watched token's Transfer names the token and
the Transfer topic; such a block without logs is fetched again, and a node that keeps leaving
them out is an error the watcher retries, never a block scanned as empty.
"""

import random
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from chains import (
    TRANSFER_TOPIC,
    AddressSet,
    Advance,
    ChainFollower,
    IncompleteLogs,
    RpcClient,
    fetch_header,
)
from chains.abi import encode_call
from chains.bloom import BloomMask, bloom_mask, may_contain
from chains.devnet import DevChain, deploy_test_usd
from tests.chains.test_follower import fresh_address
from tests.rpc_proxy import LogDroppingProxy

# From an Anvil block holding one transfer of TestUSD (at the devnet's first deployment
# address) from dev account 1 to 0xabab...ab, and from one holding only an ETH transfer.
TOKEN = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
TOKEN_TRANSFER_BLOOM = (
    "0x00000000000000000002000000000000000000000000000000000000000000000000000000000008000000"
    "0000000000000000000000000000000020000000000000000000000000000000080000000000000000000000"
    "0000000000000000000000084000000000000000000000000000000000000000000000001000000000020000"
    "0000000000000000000000000000000000000000000000000200000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000420000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000001000000000000000000000000000000"
)
ETH_ONLY_BLOOM = "0x" + "0" * 512


def _transfer_mask(token: str) -> BloomMask:
    return bloom_mask(bytes.fromhex(token[2:]), bytes.fromhex(TRANSFER_TOPIC[2:]))


def test_the_bloom_of_a_block_with_a_token_transfer_names_the_token_and_the_topic() -> None:
    assert len(TOKEN_TRANSFER_BLOOM) == 2 + 512
    assert may_contain(TOKEN_TRANSFER_BLOOM, _transfer_mask(TOKEN))
    recipient = bytes.fromhex("00" * 12 + "ab" * 20)
    assert may_contain(TOKEN_TRANSFER_BLOOM, bloom_mask(recipient))


def test_the_bloom_rules_out_other_tokens_and_blocks_without_logs() -> None:
    assert not may_contain(ETH_ONLY_BLOOM, _transfer_mask(TOKEN))
    assert not may_contain(TOKEN_TRANSFER_BLOOM, _transfer_mask("0x" + "12" * 20))
    approval = bytes.fromhex(
        "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"  # Approval topic
    )
    assert not may_contain(TOKEN_TRANSFER_BLOOM, bloom_mask(bytes.fromhex(TOKEN[2:]), approval))


def test_reading_a_few_digits_of_the_bloom_agrees_with_reading_it_as_a_number() -> None:
    rng = random.Random(5)
    for _ in range(500):
        mask = bloom_mask(rng.randbytes(20), rng.randbytes(32))
        bloom = 0
        for _ in range(rng.randint(0, 60)):
            bloom |= bloom_mask(rng.randbytes(20)).bits
        if rng.random() < 0.3:
            bloom |= mask.bits
        expected = bloom & mask.bits == mask.bits
        padded = format(bloom, "0512x")
        assert may_contain("0x" + padded, mask) is expected
        assert may_contain("0x" + padded.upper(), mask) is expected
        assert may_contain(hex(bloom), mask) is expected  # leading zeros left out


@contextmanager
def _follower(url: str, chain: DevChain) -> Iterator[ChainFollower]:
    with RpcClient(url) as rpc:
        yield ChainFollower(rpc, tokens={chain.token_address: "USDC"})


def _deposit_block(devnet: DevChain, to: str) -> int:
    devnet.send_tokens(devnet.accounts[1].address, to, 4_200_000)
    return devnet.mine()


def test_logs_left_out_once_are_fetched_again(devnet: DevChain) -> None:
    alice = fresh_address()
    tip = fetch_header(devnet.rpc)
    assert tip is not None
    _deposit_block(devnet, alice)
    with (
        LogDroppingProxy(devnet.rpc_url, drops=1).running() as proxy,
        _follower(proxy.url, devnet) as follower,
    ):
        result = follower.step([tip], AddressSet([alice]))
    assert isinstance(result, Advance)
    [transfer] = [t for block in result.blocks for t in block.token_transfers]
    assert (transfer.to_address, transfer.amount) == (alice, 4_200_000)
    assert proxy.get_logs_calls == 2


def test_logs_of_one_token_left_out_beside_another_tokens_are_fetched_again(
    devnet: DevChain,
) -> None:
    second_token = deploy_test_usd(devnet.devnet, devnet.deployer.address)
    alice = fresh_address()
    tip = fetch_header(devnet.rpc)
    assert tip is not None
    devnet.send_tokens(devnet.accounts[1].address, alice, 1_000_000)
    devnet.devnet.mint_tokens(second_token, devnet.deployer.address, alice, 2_000_000)
    devnet.mine()
    tokens = {devnet.token_address: "USDC", second_token: "USDT"}
    with (
        LogDroppingProxy(devnet.rpc_url, drops=1, only=second_token).running() as proxy,
        RpcClient(proxy.url) as rpc,
    ):
        result = ChainFollower(rpc, tokens=tokens).step([tip], AddressSet([alice]))
    assert isinstance(result, Advance)
    found = {(t.asset, t.amount) for block in result.blocks for t in block.token_transfers}
    assert found == {("USDC", 1_000_000), ("USDT", 2_000_000)}


def test_a_node_that_keeps_leaving_logs_out_is_an_error_not_an_empty_block(
    devnet: DevChain,
) -> None:
    alice = fresh_address()
    tip = fetch_header(devnet.rpc)
    assert tip is not None
    block = _deposit_block(devnet, alice)
    with (
        LogDroppingProxy(devnet.rpc_url, drops=100).running() as proxy,
        _follower(proxy.url, devnet) as follower,
        pytest.raises(IncompleteLogs, match=f"block {block} "),
    ):
        follower.step([tip], AddressSet([alice]))


def test_a_bloom_that_matches_by_chance_does_not_stop_the_follower(devnet: DevChain) -> None:
    # The watched token emits an Approval and another token a Transfer: the block's bloom
    # holds the watched token's address and the Transfer topic, yet no watched Transfer.
    sender = devnet.accounts[2].address
    other_token = deploy_test_usd(devnet.devnet, devnet.deployer.address)
    tip = fetch_header(devnet.rpc)
    assert tip is not None
    spender = fresh_address()
    devnet.devnet.send_transaction(
        sender, devnet.token_address, data=encode_call("approve(address,uint256)", spender, 5)
    )
    devnet.devnet.mint_tokens(other_token, devnet.deployer.address, fresh_address(), 7)
    block = devnet.mine()
    raw = devnet.rpc.call("eth_getBlockByNumber", hex(block), False)
    assert may_contain(raw["logsBloom"], _transfer_mask(devnet.token_address))

    with _follower(devnet.rpc_url, devnet) as follower:
        result = follower.step([tip], AddressSet([spender]))

    assert isinstance(result, Advance)
    assert [b.header.number for b in result.blocks] == [block]
    assert not result.blocks[0].token_transfers
