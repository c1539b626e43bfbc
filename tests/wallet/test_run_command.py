"""`wallet run` (what `make run` calls): every process, a devnet that mines, restarts with
back-off, a halted chain that stops only itself, and a clean stop on SIGTERM."""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import make_url

from chains import RpcClient, native_balance
from chains.devnet import DEV_MNEMONIC, dev_accounts, find_free_port
from custody import KeySigner, MasterSeed
from fiat.sandbox import SandboxControl
from fiat.sandbox.settings import DEFAULT_API_KEY
from wallet.devnet import HOT_WALLET_ETH

CATALOGUE = """
[[chains]]
name = "devnet"
chain_id = 31337
rpc_url = "http://127.0.0.1:{port_a}"
confirmations = 3
local = true

[[chains]]
name = "devnet-l2"
chain_id = 31338
rpc_url = "http://127.0.0.1:{port_b}"
confirmations = 3
local = true

[[assets]]
code = "USD"
kind = "fiat"
decimals = 2

[[assets]]
code = "ETH"
kind = "native"
decimals = 18
chain = "devnet"

[[assets]]
code = "USDC"
kind = "erc20"
decimals = 6
chain = "devnet"
contract_address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

[[assets]]
code = "ETH-L2"
kind = "native"
decimals = 18
chain = "devnet-l2"
"""
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CAST = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "cast"
SCOPES = ("--scopes", "read,transfer")
CHAIN_ID = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}


def answers(url: str, payload: dict[str, object] | None = None) -> bool:
    # A loaded machine (and coverage's tracing) may make an answer slow, not absent.
    try:
        if payload is None:
            return httpx.get(url, timeout=10).status_code == 200
        return httpx.post(url, json=payload, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


class WalletRun:
    """`wallet run` on its own database, data directory and free ports."""

    def __init__(
        self,
        tmp_path: Path,
        database_url: str | None,
        *options: str,
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
    ) -> None:
        """`database_url` None: the embedded PostgreSQL in the run's data directory
        (`data_dir`, by default in `tmp_path`)."""
        self.port_a, self.port_b, api_port = find_free_port(), find_free_port(), find_free_port()
        self.api = f"http://127.0.0.1:{api_port}"
        self.bank = f"http://127.0.0.1:{find_free_port()}"
        self.rpc_a, self.rpc_b = (
            f"http://127.0.0.1:{self.port_a}",
            f"http://127.0.0.1:{self.port_b}",
        )
        catalogue = tmp_path / "assets.toml"
        catalogue.write_text(CATALOGUE.format(port_a=self.port_a, port_b=self.port_b))
        self.data_dir = data_dir or tmp_path / "data"
        self.env = {
            **os.environ,
            "WALLET_DATA_DIR": str(self.data_dir),
            "WALLET_ASSETS_FILE": str(catalogue),
            "WALLET_API_PORT": str(api_port),
            "WALLET_BANK_URL": self.bank,
        }
        self.env.pop("WALLET_BROKER_URL", None)
        self.env.pop("WALLET_DATABASE_URL", None)
        if database_url is not None:
            self.env["WALLET_DATABASE_URL"] = database_url
        self.env.update(env or {})
        self.log_path = tmp_path / "run.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wallet", "run", *options],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + 90
        wanted = [
            (f"{self.api}/readyz", None),
            (f"{self.bank}/health", None),
            (self.rpc_a, CHAIN_ID),
            (self.rpc_b, CHAIN_ID),
        ]
        while not all(answers(url, payload) for url, payload in wanted):
            assert self.process.poll() is None, self.log
            assert time.monotonic() < deadline, self.log
            time.sleep(0.5)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            self.process.kill()
            self._log.close()

    def wallet(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """A `wallet` command on this run's database and catalogue."""
        return subprocess.run(
            [sys.executable, "-m", "wallet", *arguments],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def api_key(self) -> str:
        created = self.wallet("keys", "create", "--tenant", "alice-app", *SCOPES)
        assert created.returncode == 0, created.stderr
        found = re.search(r"^secret\s+(\S+)$", created.stdout, re.MULTILINE)
        assert found, created.stdout
        return found.group(1)

    def child(self, name: str) -> int | None:
        """The pid of the supervised process whose command line has `name`, if one runs."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            except FileNotFoundError:
                continue
            if name.encode() in command:
                return int(child)
        return None


@pytest.fixture
def run_database(server_url: str) -> Iterator[str]:
    """A database of its own: the chains of each run start from block 0."""
    name = f"wallet_test_{os.getpid()}_run"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_run_starts_the_api_funded_and_booked_devnets_the_sandbox_bank_and_stops_cleanly(
    tmp_path: Path, run_database: str
) -> None:
    run = WalletRun(tmp_path, run_database)
    try:
        run.wait_until_ready()
        hot_wallet = KeySigner.hot_wallet(MasterSeed.from_mnemonic(DEV_MNEMONIC), account=31337)
        deadline = time.monotonic() + 60
        with RpcClient(run.rpc_a) as rpc:
            while native_balance(rpc, hot_wallet.address) != HOT_WALLET_ETH:
                assert time.monotonic() < deadline, run.log
                time.sleep(0.2)
        # Each chain's funding is booked before the devnet says it funded the hot wallet.
        while run.log.count("funded with") < 2:
            assert time.monotonic() < deadline, run.log
            time.sleep(0.2)
        reconcile = run.wallet("reconcile")
        authorization = {"Authorization": f"Bearer {run.api_key()}"}
        with httpx.Client(base_url=run.api, headers=authorization, timeout=10) as client:
            payin = pay_in(client, run.bank)
    finally:
        status = run.stop()
    assert status == 0, run.log
    assert "restarting in" not in run.log, run.log
    assert reconcile.returncode == 0, reconcile.stdout
    for holding in ("devnet ETH", "devnet USDC", "devnet-l2 ETH-L2"):
        assert f"ok   {holding} holdings" in reconcile.stdout, reconcile.stdout
    assert payin["status"] == "succeeded"
    assert not answers(run.rpc_a, CHAIN_ID)
    assert not answers(f"{run.api}/healthz")
    assert not answers(f"{run.bank}/health")


def pay_in(client: httpx.Client, bank: str) -> dict[str, object]:
    """A pay-in that the customer pays at the sandbox bank, until the bank's webhooks have
    reached the API and it is credited."""
    wallet = client.post("/v1/wallets", json={"owner_ref": "alice"}).json()["id"]
    account = client.post(
        "/v1/bank-accounts",
        json={
            "wallet_id": wallet,
            "holder_name": "Alice",
            "account_number": "12345678",
            "currency": "USD",
            "country": "US",
        },
    ).json()["id"]
    body = {"wallet_id": wallet, "bank_account_id": account, "asset": "USD", "amount": "10.00"}
    payin = client.post("/v1/payins", json=body, headers={"Idempotency-Key": "p"}).json()
    control = SandboxControl(bank, DEFAULT_API_KEY)
    try:
        control.pay(payin["provider_payment_id"])
    finally:
        control.close()
    deadline = time.monotonic() + 30
    while payin["status"] != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.2)
        payin = client.get(f"/v1/payins/{payin['id']}").json()
    return dict(payin)


def test_eth_and_usdc_sent_with_cast_to_a_deposit_address_end_credited(
    tmp_path: Path, run_database: str
) -> None:
    run = WalletRun(tmp_path, run_database)
    try:
        run.wait_until_ready()
        authorization = {"Authorization": f"Bearer {run.api_key()}"}
        with httpx.Client(base_url=run.api, headers=authorization, timeout=10) as client:
            wallet = client.post("/v1/wallets", json={"owner_ref": "alice"}).json()["id"]
            issued = client.post(
                f"/v1/wallets/{wallet}/deposit-addresses", json={"chain": "devnet"}
            )
            assert issued.status_code == 201, issued.text
            address = issued.json()["address"]
            sender = dev_accounts()[0].private_key
            send = [str(CAST), "send", "--rpc-url", run.rpc_a, "--private-key", sender]
            subprocess.run(
                [*send, address, "--value", "0.25ether"], check=True, capture_output=True
            )
            subprocess.run(
                [*send, TOKEN, "transfer(address,uint256)", address, "25000000"],
                check=True,
                capture_output=True,
            )

            deadline = time.monotonic() + 60
            while True:
                deposits = client.get("/v1/deposits", params={"wallet_id": wallet}).json()["data"]
                if len(deposits) == 2 and all(d["status"] == "credited" for d in deposits):
                    break
                assert time.monotonic() < deadline, (deposits, run.log)
                time.sleep(0.5)
            assert sorted((d["asset"], d["amount"]) for d in deposits) == [
                ("ETH", "0.250000000000000000"),
                ("USDC", "25.000000"),
            ]
            balances = client.get(f"/v1/wallets/{wallet}/balances").json()
    finally:
        status = run.stop()
    assert status == 0, run.log
    held = {b["asset"]: (b["available"], b["pending_in"]) for b in balances["balances"]}
    assert held["ETH"] == ("0.250000000000000000", "0.000000000000000000")
    assert held["USDC"] == ("25.000000", "0.000000")


def test_a_watcher_that_keeps_dying_is_restarted_ever_later_while_the_rest_keeps_working(
    tmp_path: Path, run_database: str
) -> None:
    run = WalletRun(tmp_path, run_database, "--restart-delay", "0.25", "--restart-delay-max", "2")
    try:
        run.wait_until_ready()
        killed: set[int] = set()
        deadline = time.monotonic() + 60
        while len(killed) < 5:
            assert time.monotonic() < deadline, run.log
            pid = run.child("watch --chain devnet-l2")
            if pid is not None and pid not in killed:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            time.sleep(0.02)
        exits = r"watcher devnet-l2 exited \(-9\); restarting in ([\d.]+) s"
        while len(re.findall(exits, run.log)) < 5:
            assert time.monotonic() < deadline, run.log
            time.sleep(0.05)
        assert re.findall(exits, run.log) == ["0.25", "0.5", "1", "2", "2"], run.log
        assert answers(f"{run.api}/readyz")
        assert answers(run.rpc_b, CHAIN_ID)
        assert "keeps exiting" not in run.log
        assert run.child("watch --chain devnet ") is not None
        assert run.child("watch --chain devnet-l2") is None  # waiting out its delay
    finally:
        status = run.stop()
    assert status == 0, run.log
    assert not answers(f"{run.api}/healthz")


def rpc(url: str, method: str, *params: object) -> Any:
    answer = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=10
    ).json()
    assert "error" not in answer, answer
    return answer["result"]


def test_a_reorg_deeper_than_the_window_halts_one_chain_the_rest_works_and_a_resume_brings_it_back(
    tmp_path: Path, run_database: str
) -> None:
    run = WalletRun(
        tmp_path,
        run_database,
        "--restart-delay",
        "0.25",
        "--restart-delay-max",
        "2",
        env={"WALLET_WATCHER_WINDOW_SIZE": "6"},
    )
    sender = dev_accounts()[0].private_key
    try:
        run.wait_until_ready()
        authorization = {"Authorization": f"Bearer {run.api_key()}"}
        with httpx.Client(base_url=run.api, headers=authorization, timeout=10) as client:

            def deposits(wallet: str) -> list[dict[str, Any]]:
                found = client.get("/v1/deposits", params={"wallet_id": wallet})
                data: list[dict[str, Any]] = found.json()["data"]
                return data

            def wait_credited(wallet: str, count: int) -> list[dict[str, Any]]:
                deadline = time.monotonic() + 60
                while sum(d["status"] == "credited" for d in deposits(wallet)) < count:
                    assert time.monotonic() < deadline, (deposits(wallet), run.log)
                    time.sleep(0.25)
                return deposits(wallet)

            def deposit_address(wallet: str, chain: str) -> str:
                issued = client.post(
                    f"/v1/wallets/{wallet}/deposit-addresses", json={"chain": chain}
                )
                assert issued.status_code == 201, issued.text
                return str(issued.json()["address"])

            def send(rpc_url: str, to: str, ether: str) -> None:
                command = [str(CAST), "send", "--rpc-url", rpc_url, "--private-key", sender]
                subprocess.run([*command, to, "--value", ether], check=True, capture_output=True)

            def readiness() -> dict[str, Any]:
                answer = httpx.get(f"{run.api}/readyz", timeout=5)
                assert answer.status_code == 200, answer.text
                body: dict[str, Any] = answer.json()
                return body

            alice, bob, carol = (
                client.post("/v1/wallets", json={"owner_ref": name}).json()["id"]
                for name in ("alice", "bob", "carol")
            )
            alice_address = deposit_address(alice, "devnet")
            bob_address = deposit_address(bob, "devnet-l2")

            # The hot wallets were funded before the API was ready: the deposit goes at least
            # five blocks above that, so that the reorg below replaces the deposit's blocks
            # and not the funding's (the holdings would differ by the funding then).
            funded_by = int(rpc(run.rpc_a, "eth_blockNumber"), 16)
            while int(rpc(run.rpc_a, "eth_blockNumber"), 16) < funded_by + 5:
                time.sleep(0.25)
            send(run.rpc_a, alice_address, "1ether")
            (credited,) = wait_credited(alice, 1)
            assert readiness() == {"status": "ok", "degraded": []}

            # Replace every block from the deposit's on: deeper than the 6 headers kept.
            head = int(rpc(run.rpc_a, "eth_blockNumber"), 16)
            depth = max(8, head - credited["block_number"] + 3)
            assert head - depth + 1 > funded_by
            elsewhere = "0x" + "ab" * 20
            marker = {"from": dev_accounts()[1].address, "to": elsewhere, "value": "0x1"}
            rpc(run.rpc_a, "anvil_reorg", depth, [[marker, 0]])
            deadline = time.monotonic() + 30
            while readiness()["status"] != "degraded":
                assert time.monotonic() < deadline, run.log
                time.sleep(0.25)
            (part,) = readiness()["degraded"]
            assert part["part"] == "chain:devnet"
            assert "none of the last 6 stored blocks is canonical" in part["reason"]

            # The other chain credits deposits and the API answers transfers.
            send(run.rpc_b, bob_address, "2ether")
            wait_credited(bob, 1)
            transfer = client.post(
                "/v1/transfers",
                headers={"Idempotency-Key": "halted-1"},
                json={
                    "source_wallet_id": bob,
                    "destination_wallet_id": carol,
                    "asset": "ETH-L2",
                    "amount": "0.5",
                },
            )
            assert transfer.status_code == 201, transfer.text
            assert run.child("watch --chain devnet ") is not None  # up, idle
            assert "watcher devnet exited" not in run.log

            status = run.wallet("chain", "status")
            assert status.returncode == 0, status.stderr
            assert re.search(r"^devnet  halted since ", status.stdout, re.MULTILINE), status.stdout
            assert re.search(r"^devnet-l2  running$", status.stdout, re.MULTILINE), status.stdout
            assert "reason: devnet: none of the last 6 stored blocks" in status.stdout
            assert re.search(r"cursor \d+  head \d+  lag \d+", status.stdout), status.stdout

            resumed = run.wallet(
                "chain",
                "resume",
                "--chain",
                "devnet",
                "--from-block",
                str(credited["block_number"] - 1),
                "--reason",
                "compared the stored headers with the node: fork below the deposit",
                "--operator",
                "ops-alice",
            )
            assert resumed.returncode == 0, resumed.stderr
            assert "1 reversed" in resumed.stdout, resumed.stdout
            assert readiness() == {"status": "ok", "degraded": []}

            send(run.rpc_a, alice_address, "0.5ether")  # followed again

            def posted(wallet: str, asset: str) -> int:
                found = client.get(f"/v1/wallets/{wallet}/balances").json()["balances"]
                amounts = [Decimal(b["posted"]) for b in found if b["asset"] == asset]
                return int(sum(amounts) * 10**18)

            def chain_balance(rpc_url: str, address: str) -> int:
                return int(rpc(rpc_url, "eth_getBalance", address, "latest"), 16)

            # The ledger holds what each chain holds, once no deposit waits.
            deadline = time.monotonic() + 60
            while any(d["status"] == "seen" for d in deposits(alice)) or posted(
                alice, "ETH"
            ) != chain_balance(run.rpc_a, alice_address):
                assert time.monotonic() < deadline, (deposits(alice), run.log)
                time.sleep(0.25)
            assert posted(bob, "ETH-L2") + posted(carol, "ETH-L2") == chain_balance(
                run.rpc_b, bob_address
            )
            status = run.wallet("chain", "status").stdout
            assert re.search(r"^devnet  running", status, re.MULTILINE), status
            assert "by ops-alice from block" in status, status
            reconcile = run.wallet("reconcile")
    finally:
        status_code = run.stop()
    assert status_code == 0, run.log
    assert reconcile.returncode == 0, reconcile.stdout
