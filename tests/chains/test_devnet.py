"""Devnet process control and the deployed TestUSD."""

from pathlib import Path

import pytest

from chains.devnet import DevChain, Devnet, dev_accounts, encode_call, find_free_port
from chains.rpc import NodeUnreachable, RpcClient


def test_free_ports_found_one_after_the_other_all_differ() -> None:
    # Each is free when found, none bound yet: without memory of those handed out, two of
    # them could be the same port (an API's and a node's, seen in a test run).
    ports = [find_free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)


def test_dev_accounts_are_anvils_funded_accounts(devnet: DevChain) -> None:
    accounts = dev_accounts()
    assert accounts[0].address == "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
    assert devnet.rpc.call("eth_accounts") == [a.address for a in accounts]
    assert devnet.devnet.balance(accounts[5].address) > 0


def test_test_usd_has_six_decimals_and_the_usdc_symbol(devnet: DevChain) -> None:
    decimals = devnet.devnet.eth_call(devnet.token_address, encode_call("decimals()"))
    assert int(decimals, 16) == 6
    symbol = devnet.devnet.eth_call(devnet.token_address, encode_call("symbol()"))
    assert bytes.fromhex(symbol[2:]).rstrip(b"\0").endswith(b"USDC")
    assert devnet.devnet.token_balance(devnet.token_address, devnet.accounts[3].address) > 0


def test_only_the_owner_can_mint(devnet: DevChain) -> None:
    stranger = devnet.accounts[4].address
    tx = devnet.devnet.send_transaction(
        stranger,
        devnet.token_address,
        data=encode_call("mint(address,uint256)", stranger, 1),
        gas=100_000,
    )
    devnet.mine()
    assert devnet.devnet.receipt(tx)["status"] == "0x0"


def test_mining_is_manual_by_default(devnet: DevChain) -> None:
    before = devnet.devnet.block_number()
    tx = devnet.send_eth(devnet.accounts[1].address, devnet.accounts[2].address, 1)
    assert devnet.rpc.call("eth_getTransactionReceipt", tx) is None
    assert devnet.mine(3) == before + 3
    assert int(devnet.devnet.receipt(tx)["blockNumber"], 16) == before + 1


def test_state_dumped_on_stop_is_loaded_on_start(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with Devnet(chain_id=4242, dump_state=state) as first:
        first.mine(7)
        url = first.rpc_url
    assert state.exists()
    with RpcClient(url, connect_timeout=0.5) as rpc, pytest.raises(NodeUnreachable):
        rpc.call("eth_chainId")
    with Devnet(chain_id=4242, load_state=state) as second:
        assert second.block_number() == 7


def test_second_chain_has_its_own_id_and_token(devnet: DevChain, second_devnet: DevChain) -> None:
    assert second_devnet.rpc.call("eth_chainId") == hex(31338)
    assert second_devnet.rpc_url != devnet.rpc_url
    assert (
        second_devnet.devnet.token_balance(
            second_devnet.token_address, second_devnet.accounts[1].address
        )
        > 0
    )
