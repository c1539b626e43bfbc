"""`wallet devnet` mines each local chain as its catalogue entry says: interval or automine."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chains.devnet import dev_accounts, find_free_port
from chains.rpc import RpcClient
from wallet.assets.service import Catalogue, load_catalogue
from wallet.devnet import run_devnets

CATALOGUE = """
[[chains]]
name = "interval"
chain_id = 31337
rpc_url = "http://127.0.0.1:{interval}"
confirmations = 1
block_time = 0.5
local = true

[[chains]]
name = "automine"
chain_id = 31338
rpc_url = "http://127.0.0.1:{automine}"
confirmations = 1
block_time = 0
local = true
"""


def head(rpc: RpcClient) -> int:
    return int(rpc.call("eth_blockNumber"), 16)


def test_a_chain_without_a_block_time_gets_a_block_every_second(tmp_path: Path) -> None:
    catalogue = tmp_path / "assets.toml"
    catalogue.write_text(
        '[[chains]]\nname = "devnet"\nchain_id = 1\nrpc_url = "http://127.0.0.1:1"\n'
        "confirmations = 1\n"
    )
    assert load_catalogue(catalogue).chain("devnet").block_time == 1
    catalogue.write_text(catalogue.read_text() + "block_time = -1\n")
    with pytest.raises(ValueError, match="block_time"):
        load_catalogue(catalogue)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[RpcClient, RpcClient]]:
    ports = {"interval": find_free_port(), "automine": find_free_port()}
    path = tmp_path / "assets.toml"
    path.write_text(CATALOGUE.format(**ports))
    catalogue: Catalogue = load_catalogue(path)
    stop = threading.Event()
    ready = threading.Event()

    def report(line: str) -> None:
        if line.startswith("devnet running"):
            ready.set()

    devnets = threading.Thread(
        target=run_devnets,
        args=(catalogue, tmp_path / "anvil", stop, report),
        kwargs={"fresh": True, "hot_wallets": {}},
    )
    devnets.start()
    try:
        assert ready.wait(60)
        with (
            RpcClient(f"http://127.0.0.1:{ports['interval']}") as interval,
            RpcClient(f"http://127.0.0.1:{ports['automine']}") as automine,
        ):
            yield interval, automine
    finally:
        stop.set()
        devnets.join(30)


def test_blocks_come_on_their_own_or_with_each_transaction(
    running: tuple[RpcClient, RpcClient],
) -> None:
    interval, automine = running
    before = head(interval), head(automine)
    time.sleep(1.6)
    assert head(interval) >= before[0] + 2
    assert head(automine) == before[1]

    sender, receiver = dev_accounts()[1].address, dev_accounts()[2].address
    sent = automine.call("eth_sendTransaction", {"from": sender, "to": receiver, "value": "0x1"})
    # Anvil answers eth_sendTransaction before its automined block is stored.
    deadline = time.monotonic() + 2
    while (receipt := automine.call("eth_getTransactionReceipt", sent)) is None:
        assert time.monotonic() < deadline, "not mined on arrival"
        time.sleep(0.02)
    assert int(receipt["blockNumber"], 16) == before[1] + 1
