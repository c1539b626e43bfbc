"""`wallet run` (what `make run` calls) starts every process, and stops them all on SIGTERM."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chains import RpcClient, native_balance
from chains.devnet import find_free_port
from custody import KeySigner, MasterSeed
from wallet.cli import DEV_MNEMONIC
from wallet.devnet import HOT_WALLET_ETH

CATALOGUE = """
[[chains]]
name = "devnet"
chain_id = 31337
rpc_url = "http://127.0.0.1:{port_a}"
confirmations = 3

[[chains]]
name = "devnet-l2"
chain_id = 31338
rpc_url = "http://127.0.0.1:{port_b}"
confirmations = 3

[[assets]]
code = "USD"
kind = "fiat"
decimals = 2

[[assets]]
code = "ETH"
kind = "native"
decimals = 18
chain = "devnet"
"""


def answers(url: str, payload: dict[str, object] | None = None) -> bool:
    try:
        if payload is None:
            return httpx.get(url, timeout=1).status_code == 200
        return httpx.post(url, json=payload, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_run_starts_the_api_the_devnets_with_funded_hot_wallets_and_stops_cleanly(
    tmp_path: Path, database_url: str
) -> None:
    port_a, port_b, api_port = find_free_port(), find_free_port(), find_free_port()
    catalogue = tmp_path / "assets.toml"
    catalogue.write_text(CATALOGUE.format(port_a=port_a, port_b=port_b))
    env = {
        **os.environ,
        "WALLET_DATABASE_URL": database_url,
        "WALLET_DATA_DIR": str(tmp_path / "data"),
        "WALLET_ASSETS_FILE": str(catalogue),
        "WALLET_API_PORT": str(api_port),
    }
    env.pop("WALLET_BROKER_URL", None)
    log = (tmp_path / "run.log").open("wb")
    run = subprocess.Popen(
        [sys.executable, "-m", "wallet", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    chain_id = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        deadline = time.monotonic() + 90
        wanted = [
            (f"http://127.0.0.1:{api_port}/readyz", None),
            (f"http://127.0.0.1:{port_a}", chain_id),
            (f"http://127.0.0.1:{port_b}", chain_id),
        ]
        while not all(answers(url, payload) for url, payload in wanted):
            assert run.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.5)
        hot_wallet = KeySigner.hot_wallet(MasterSeed.from_mnemonic(DEV_MNEMONIC), account=31337)
        with RpcClient(f"http://127.0.0.1:{port_a}") as rpc:
            while native_balance(rpc, hot_wallet.address) != HOT_WALLET_ETH:
                assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
                time.sleep(0.2)
    finally:
        run.send_signal(signal.SIGTERM)
        status = run.wait(timeout=60)
        log.close()
    assert status == 0, (tmp_path / "run.log").read_text()
    assert not answers(f"http://127.0.0.1:{port_a}", chain_id)
    assert not answers(f"http://127.0.0.1:{api_port}/healthz")
