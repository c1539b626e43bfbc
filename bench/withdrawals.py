"""Crypto withdrawals from HTTP request to confirmation, next to a raw send loop on the same
Anvil; prints one JSON line.

Usage: python bench/withdrawals.py [--withdrawals 1000] [--clients 16] [--wallets 100]
                                   [--broadcast-interval 0.2] [--confirmations 1]
The server is WALLET_BENCH_DATABASE_URL (an administrative URL) or the embedded PostgreSQL;
the Celery broker is WALLET_BENCH_BROKER_URL (Redis) or kombu's SQL transport on it.

One Anvil mining a block every second (`block_time` 1, as `wallet devnet` runs it):
- raw_per_s: one key signs `--withdrawals` ETH transfers and sends them all (one
  `eth_sendRawTransaction` each), then waits until every receipt is there;
- withdrawals_per_s: as many ETH withdrawals posted to `POST /v1/withdrawals` by `--clients`
  connections (uvicorn, one worker per core), signed and sent by the broadcaster (a Celery
  worker and beat), confirmed by the chain watcher (`wallet watch`), all real processes;
  from the first request to the last confirmation. p50_s and p99_s are each withdrawal's
  time from its request to its confirmation. By default a withdrawal is confirmed once its
  transaction is mined (1 confirmation), as the raw loop ends with each receipt.
- nonce_gaps: nonces below the hot wallet's nonce on the chain that no withdrawal holds,
  plus nonces held twice, plus withdrawals at or above it; 0 when every withdrawal's nonce is
  distinct and they are consecutive from the hot wallet's first nonce.
"""

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import repo_first  # noqa: F401 (first: the path to the service, see its docstring)
from ledger import fresh_database, invariants_ok
from serving import (
    Connection,
    api_key,
    api_server,
    database_server,
    post_head,
    progress,
    wait_for_status,
)
from sqlalchemy import text
from sqlalchemy.orm import Session

from chains import (
    FeePolicy,
    FeeQuote,
    RpcCall,
    RpcClient,
    account_nonces,
    native_transfer,
    quote_fees,
    send_raw_transaction,
)
from chains.devnet import DevChain, start_dev_chain
from custody import KeySigner, MasterSeed
from wallet.apikeys.models import Scope
from wallet.assets.service import load_catalogue, store_catalogue
from wallet.database import make_engine, make_session_factory, migrate, run_transaction
from wallet.ledger import service as ledger
from wallet.ledger.repository import system_account, user_account
from wallet.ledger.service import Posting, Reason, TransactionRequest
from wallet.wallets.service import create_wallet

CHAIN = "devnet"
BENCH_MNEMONIC = " ".join(["abandon"] * 11 + ["about"])  # a test vector, never real funds
AMOUNT = 10**15  # 0.001 ETH per withdrawal
FUNDING = 10**18  # each wallet's ETH in the ledger
HOT_WALLET_FUNDING = 1_000 * 10**18
FEE_CAP = 500 * 10**9
TIMEOUT = 900.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--withdrawals", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--wallets", type=int, default=100)
    parser.add_argument("--broadcast-interval", type=float, default=0.2)
    parser.add_argument("--confirmations", type=int, default=1)
    args = parser.parse_args()

    broker = os.environ.get("WALLET_BENCH_BROKER_URL")
    url = fresh_database(database_server(), "wallet_bench_withdrawals")
    logs = Path(tempfile.mkdtemp(prefix="wallet-bench-withdrawals-"))
    figures: dict[str, Any] = {
        "withdrawals": args.withdrawals,
        "clients": args.clients,
        "wallets": args.wallets,
        "block_time_s": 1,
        "confirmations": args.confirmations,
        "broadcast_interval_s": args.broadcast_interval,
        "broker": "redis" if broker else "sql",
    }
    chain = start_dev_chain(block_time=1, extra_args=["--quiet"])
    try:
        raw_seconds = raw_loop(chain, args.withdrawals)
        figures["raw_per_s"] = round(args.withdrawals / raw_seconds, 1)
        progress("raw", {"seconds": round(raw_seconds, 2)})

        catalogue_file = write_catalogue(chain, args.confirmations, logs / "assets.toml")
        tenant, wallets = prepare(url, catalogue_file, args.wallets)
        secret = api_key(url, tenant, [Scope.WITHDRAW])
        hot = KeySigner.hot_wallet(
            MasterSeed.from_mnemonic(BENCH_MNEMONIC), account=chain.chain_id
        ).address
        fund(chain, hot)
        settings = {
            "WALLET_ASSETS_FILE": str(catalogue_file),
            "WALLET_DEV_MNEMONIC": BENCH_MNEMONIC,
            "WALLET_WITHDRAWAL_BROADCAST_INTERVAL": str(args.broadcast_interval),
            "WALLET_CELERY_QUEUE": f"wallet-bench-{uuid.uuid4().hex[:12]}",
            **({"WALLET_BROKER_URL": broker} if broker else {}),
        }
        workers = os.cpu_count() or 2
        figures["api_workers"] = workers
        with service(url, settings, logs), api_server(url, workers, settings) as port:
            load = asyncio.run(request_all(port, secret, wallets, args.withdrawals, args.clients))
            figures["requests_s"] = round(load.seconds, 2)
            progress("requested", {"seconds": figures["requests_s"], "errors": load.errors})
            confirmed = wait_for_status(
                url, "withdrawals", "confirmed", len(load.ids), timeout=TIMEOUT
            )
        latencies = sorted(confirmed[i] - load.started[i] for i in load.ids)
        elapsed = max(confirmed.values()) - min(load.started.values())
        figures["withdrawals_per_s"] = round(args.withdrawals / elapsed, 1)
        figures["ratio"] = round(figures["withdrawals_per_s"] / figures["raw_per_s"], 3)
        figures["p50_s"] = round(statistics.median(latencies), 2)
        figures["p99_s"] = round(latencies[int(len(latencies) * 0.99) - 1], 2)
        figures.update(nonce_figures(url, chain.rpc, hot))
        figures["invariants_ok"] = invariants_ok(url)
    finally:
        chain.devnet.stop()
    print(json.dumps(figures))


# --- the raw loop ----------------------------------------------------------------------


def raw_loop(chain: DevChain, count: int) -> float:
    """Seconds for one key to sign and send `count` ETH transfers, then see every receipt."""
    account = chain.accounts[2]
    signer = KeySigner(bytes.fromhex(account.private_key.removeprefix("0x")))
    rpc = chain.rpc
    began = time.perf_counter()
    first = account_nonces(rpc, account.address).pending
    fees = market_fees(rpc)
    hashes = []
    for nonce in range(first, first + count):
        request = native_transfer(
            chain_id=chain.chain_id, nonce=nonce, to=outside(), amount=AMOUNT, fees=fees
        )
        sent = send_raw_transaction(rpc, signer.sign(request).raw_transaction)
        hashes.append(sent.tx_hash)
    while hashes:
        receipts = rpc.batch([RpcCall("eth_getTransactionReceipt", (h,)) for h in hashes])
        hashes = [h for h, receipt in zip(hashes, receipts, strict=True) if receipt is None]
        if hashes:
            time.sleep(0.05)
    return time.perf_counter() - began


def market_fees(rpc: RpcClient) -> FeeQuote:
    quote = quote_fees(rpc, FeePolicy(max_fee_per_gas_cap=FEE_CAP))
    assert isinstance(quote, FeeQuote)
    return quote


def outside() -> str:
    return "0x" + secrets.token_hex(20)


# --- the service -----------------------------------------------------------------------


def write_catalogue(chain: DevChain, confirmations: int, path: Path) -> Path:
    """The built-in catalogue's devnet and its assets, at the running Anvil."""
    document = tomllib.loads(
        resources.files("wallet.assets").joinpath("catalogue.toml").read_text()
    )
    (devnet,) = (entry for entry in document["chains"] if entry["name"] == CHAIN)
    devnet.update(rpc_url=chain.rpc_url, chain_id=chain.chain_id, confirmations=confirmations)
    assets = [entry for entry in document["assets"] if entry.get("chain") == CHAIN]
    for asset in assets:
        if "contract_address" in asset:
            asset["contract_address"] = chain.token_address
    # JSON's strings, integers and booleans are TOML's too.
    tables = [("chains", devnet), *(("assets", asset) for asset in assets)]
    path.write_text(
        "".join(
            f"[[{kind}]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in entry.items())
            for kind, entry in tables
        )
    )
    return path


def prepare(url: str, catalogue_file: Path, count: int) -> tuple[str, list[str]]:
    """Migrate; one tenant with `count` wallets, each holding FUNDING wei in the ledger."""
    engine = make_engine(url)
    migrate(engine)
    tenant = "ten_bench"

    def setup(session: Session) -> list[str]:
        store_catalogue(session, load_catalogue(catalogue_file))
        session.execute(text("INSERT INTO tenants (id, name) VALUES (:t, :t)"), {"t": tenant})
        bank = system_account(session, "bank:bench", "ETH")
        wallets = []
        for i in range(count):
            wallet = create_wallet(session, tenant, f"user{i}").id
            account = user_account(session, wallet, "ETH")
            request = TransactionRequest(
                Reason.ADJUSTMENT, [Posting(bank, -FUNDING), Posting(account, FUNDING)]
            )
            ledger.post(session, request)
            wallets.append(wallet)
        return wallets

    wallets = run_transaction(make_session_factory(engine), setup)
    engine.dispose()
    return tenant, wallets


def fund(chain: DevChain, hot_wallet: str) -> None:
    """ETH for every withdrawal and its gas, from a dev account, mined."""
    tx_hash = chain.send_eth(chain.accounts[1].address, hot_wallet, HOT_WALLET_FUNDING)
    deadline = time.monotonic() + 30
    while chain.rpc.call("eth_getTransactionReceipt", tx_hash) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the hot wallet's funding was not mined")
        time.sleep(0.1)


@contextmanager
def service(url: str, settings: Mapping[str, str], logs: Path) -> Iterator[None]:
    """A Celery worker, beat and the chain's watcher, as `wallet` processes; the worker's
    log at INFO, which says when it is ready."""
    env = {**os.environ, "WALLET_DATABASE_URL": url, "WALLET_DATA_DIR": str(logs), **settings}
    commands = {
        "worker": ["worker", "--concurrency", "2", "--loglevel", "info"],
        "beat": ["beat", "--loglevel", "warning"],
        "watcher": ["watch", "--chain", CHAIN],
    }
    with ExitStack() as stack:
        processes = []
        for name, arguments in commands.items():
            log = stack.enter_context((logs / f"{name}.log").open("w"))
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "wallet", *arguments],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        try:
            # The requests start once the worker takes tasks, not while it starts up.
            wait_until_logged(logs / "worker.log", "ready.", processes[0])
            yield
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)


def wait_until_logged(path: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    """Wait until the process has written `text` to its log."""
    deadline = time.monotonic() + 60
    while text not in path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{path.name} never said {text!r}")
        time.sleep(0.1)


# --- requests and confirmations ---------------------------------------------------------


class Requests:
    """The withdrawals requested: each id, and when (epoch seconds) its request was sent."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.started: dict[str, float] = {}
        self.errors = 0
        self.seconds = 0.0


async def request_all(
    port: int, secret: str, wallets: list[str], count: int, clients: int
) -> Requests:
    """`count` withdrawals, round robin over the wallets, over `clients` connections."""
    requests = Requests()
    todo = list(range(count))

    async def client(connection: Connection) -> None:
        while todo:
            index = todo.pop()
            body = json.dumps(
                {
                    "wallet_id": wallets[index % len(wallets)],
                    "asset": "ETH",
                    "amount": "0.001",
                    "destination": {"type": "crypto", "chain": CHAIN, "address": outside()},
                }
            ).encode()
            head = post_head(port, "/v1/withdrawals", secret, body)
            started = time.time()
            status, answer = await connection.post(head, body)
            if status != 201:
                requests.errors += 1
                raise RuntimeError(f"withdrawal refused ({status}): {answer.decode()}")
            withdrawal_id = json.loads(answer)["id"]
            requests.ids.append(withdrawal_id)
            requests.started[withdrawal_id] = started

    connections = [await Connection.open(port) for _ in range(clients)]
    began = time.perf_counter()
    await asyncio.gather(*(client(connection) for connection in connections))
    requests.seconds = time.perf_counter() - began
    for connection in connections:
        connection.close()
    return requests


def nonce_figures(url: str, rpc: RpcClient, hot_wallet: str) -> dict[str, int]:
    """The hot wallet's nonce on the chain against the withdrawals' nonces."""
    engine = make_engine(url, pool_size=1)
    nonces, attempts = run_transaction(
        make_session_factory(engine),
        lambda s: (
            list(s.execute(text("SELECT nonce FROM withdrawals")).scalars()),
            s.execute(text("SELECT count(*) FROM withdrawal_attempts")).scalar_one(),
        ),
    )
    engine.dispose()
    on_chain = account_nonces(rpc, hot_wallet).latest
    held = set(nonces)
    gaps = len(set(range(on_chain)) - held)
    gaps += len(nonces) - len(held)
    gaps += sum(1 for nonce in nonces if nonce is None or nonce >= on_chain)
    return {
        "nonce_gaps": gaps,
        "hot_wallet_nonce": on_chain,
        "transactions_signed": attempts,
    }


if __name__ == "__main__":
    main()
