"""RpcClient against a real Anvil: batching, typed errors, and no error ever read as empty."""

import socket

import pytest

from chains.devnet import DevChain, find_free_port
from chains.rpc import NodeUnreachable, RpcCall, RpcClient, RpcResponseError


def test_batch_returns_results_in_call_order_across_chunks(devnet: DevChain) -> None:
    head = int(devnet.rpc.call("eth_blockNumber"), 16)
    with RpcClient(devnet.rpc_url, max_batch_size=3) as rpc:
        calls = [RpcCall("eth_getBlockByNumber", (hex(n), False)) for n in range(head + 1)]
        blocks = rpc.batch([RpcCall("eth_chainId"), *calls])
    assert blocks[0] == hex(devnet.chain_id)
    assert [int(b["number"], 16) for b in blocks[1:]] == list(range(head + 1))


def test_a_missing_block_is_none_not_an_error(devnet: DevChain) -> None:
    assert devnet.rpc.call("eth_getBlockByNumber", hex(10**9), False) is None


def test_a_json_rpc_error_in_a_batch_raises_with_method_and_code(devnet: DevChain) -> None:
    calls = [RpcCall("eth_chainId"), RpcCall("no_suchMethod"), RpcCall("eth_blockNumber")]
    with pytest.raises(RpcResponseError) as caught:
        devnet.rpc.batch(calls)
    assert caught.value.method == "no_suchMethod"
    assert caught.value.code == -32601


def test_invalid_params_raise_rather_than_return_nothing(devnet: DevChain) -> None:
    with pytest.raises(RpcResponseError):
        devnet.rpc.call("eth_getBlockByNumber", "not-a-block", False)


def test_a_closed_port_is_unreachable_for_call_and_batch() -> None:
    with RpcClient(f"http://127.0.0.1:{find_free_port()}", connect_timeout=0.5) as rpc:
        with pytest.raises(NodeUnreachable):
            rpc.call("eth_chainId")
        with pytest.raises(NodeUnreachable):
            rpc.batch([RpcCall("eth_chainId")])


def test_an_empty_batch_sends_nothing() -> None:
    with RpcClient(f"http://127.0.0.1:{find_free_port()}") as rpc:
        assert rpc.batch([]) == []


def test_a_node_that_never_answers_is_unreachable_after_the_timeout() -> None:
    # A listening socket that is never served: the connection is accepted, no reply comes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with RpcClient(url, timeout=0.3) as rpc, pytest.raises(NodeUnreachable):
            rpc.call("eth_blockNumber")
