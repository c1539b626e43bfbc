"""Ledger throughput next to pgbench's TPC-B on the same PostgreSQL; prints one JSON line.

Usage: python bench/ledger.py [--seconds 10] [--clients 8]
The server is WALLET_BENCH_DATABASE_URL (an administrative URL) or the embedded PostgreSQL.

`transfers_per_s`, `hot_transfers_per_s` and `batch_transfers_per_s` measure the ledger call
(`wallet.ledger.service`: one transaction of two postings per call, or 1,000 per call);
`service_transfers_per_s` measures a wallet-to-wallet transfer as the API makes it
(`wallet.transfers.service.transfers_once`: the wallets and accounts looked up, the
idempotency key claimed, the postings, the `transfer.created` event and the outcome written).
"""

import argparse
import json
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import repo_first  # noqa: F401 (first: the path to the service, see its docstring)
from sqlalchemy import make_url, text
from sqlalchemy.orm import Session

from wallet.assets.service import Catalogue, load_catalogue, store_catalogue
from wallet.database import make_engine, make_session_factory, migrate, run_transaction
from wallet.embedded_postgres import start_embedded_postgres
from wallet.errors import WalletError
from wallet.idempotency.service import IdempotencyKey
from wallet.ids import new_id
from wallet.ledger import service as ledger
from wallet.ledger.reconcile import check_ledger
from wallet.ledger.service import Posting, Reason, TransactionRequest, system_account
from wallet.transfers.service import KeyedTransfer, TransferRequest, transfers_once

ACCOUNTS = 10_000
BATCH = 1_000
ASSET = "USD"
FUNDING = 10**9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    server = os.environ.get("WALLET_BENCH_DATABASE_URL") or start_embedded_postgres(
        Path(tempfile.mkdtemp(prefix="wallet-bench-"))
    )
    ledger_url = fresh_database(server, "wallet_bench")
    tenant, wallets = prepare(ledger_url)

    accounts = account_ids(ledger_url, wallets)
    figures: dict[str, Any] = {"clients": args.clients, "seconds": args.seconds}
    figures["pgbench_tps"] = pgbench_tps(server, args.clients, args.seconds)
    uniform = run_clients(ledger_url, tenant, wallets, args, hot=False, accounts=accounts)
    figures["transfers_per_s"] = uniform["rate"]
    figures["p50_ms"], figures["p99_ms"] = uniform["p50_ms"], uniform["p99_ms"]
    hot = run_clients(ledger_url, tenant, wallets, args, hot=True, accounts=accounts)
    figures["hot_transfers_per_s"] = hot["rate"]
    figures["hot_p99_ms"] = hot["p99_ms"]
    figures["batch_transfers_per_s"] = batch_rate(ledger_url, accounts, args.seconds)
    service = run_clients(ledger_url, tenant, wallets, args, hot=False)
    figures["service_transfers_per_s"] = service["rate"]
    figures["service_p99_ms"] = service["p99_ms"]
    figures["transfers_vs_pgbench"] = round(figures["transfers_per_s"] / figures["pgbench_tps"], 3)
    figures["hot_vs_uniform"] = round(hot["rate"] / uniform["rate"], 3)
    figures["invariants_ok"] = invariants_ok(ledger_url)
    print(json.dumps(figures))


def fresh_database(server: str, name: str) -> str:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def prepare(url: str) -> tuple[str, list[str]]:
    """Migrate, then create one tenant with ACCOUNTS funded wallets (in bulk)."""
    engine = make_engine(url)
    migrate(engine)
    sessions = make_session_factory(engine)
    catalogue = load_catalogue()
    tenant = "ten_bench"
    wallets = [new_id("wal") for _ in range(ACCOUNTS)]

    def setup(session: Any) -> None:
        store_catalogue(session, catalogue)
        session.execute(text("INSERT INTO tenants (id, name) VALUES (:t, :t)"), {"t": tenant})
        session.execute(
            text(
                "INSERT INTO wallets (id, tenant_id, owner_ref) "
                "SELECT w, :t, w FROM unnest(CAST(:w AS text[])) AS w"
            ),
            {"t": tenant, "w": wallets},
        )
        accounts = session.execute(
            text(
                "INSERT INTO accounts (wallet_id, asset) "
                "SELECT w, :a FROM unnest(CAST(:w AS text[])) AS w RETURNING id"
            ),
            {"a": ASSET, "w": wallets},
        ).scalars()
        bank = system_account(session, "bank:bench", ASSET)
        funding = [
            TransactionRequest(Reason.ADJUSTMENT, [Posting(bank, -FUNDING), Posting(a, FUNDING)])
            for a in accounts
        ]
        for start in range(0, len(funding), BATCH):
            ledger.apply(session, funding[start : start + BATCH], atomic=True)

    run_transaction(sessions, setup)
    engine.dispose()
    return tenant, wallets


def account_ids(url: str, wallets: list[str]) -> list[int]:
    """The USD account of each wallet, in the order of `wallets`."""
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT wallet_id, id FROM accounts WHERE asset = :a AND wallet_id IS NOT NULL"),
            {"a": ASSET},
        ).all()
    engine.dispose()
    by_wallet = {row.wallet_id: row.id for row in rows}
    return [by_wallet[wallet] for wallet in wallets]


def pgbench_tps(server: str, clients: int, seconds: float) -> float:
    """pgbench's built-in TPC-B, scale = clients, on its own database of the same server."""
    url = fresh_database(server, "pgbench_reference")
    binary = pgbench_binary()
    env = {**os.environ, "PGOPTIONS": ""}
    subprocess.run(
        [binary, "-i", "-q", "-s", str(clients), url], check=True, capture_output=True, env=env
    )
    run = subprocess.run(
        [binary, "-n", "-c", str(clients), "-j", "2", "-T", str(int(seconds)), url],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    match = re.search(r"tps = ([0-9.]+)", run.stdout)
    assert match is not None, run.stdout
    return round(float(match.group(1)), 1)


def pgbench_binary() -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415

    return shutil.which("pgbench") or str(POSTGRES_BIN_PATH / "pgbench")


@dataclass(frozen=True)
class ClientJob:
    """One client's loop: ledger calls between accounts, or service transfers between wallets."""

    url: str
    tenant: str
    wallets: list[str]
    accounts: list[int]
    seconds: float
    seed: int
    hot: bool = False
    through_service: bool = False


def run_clients(
    url: str,
    tenant: str,
    wallets: list[str],
    args: argparse.Namespace,
    *,
    hot: bool,
    accounts: list[int] | None = None,
) -> dict[str, float]:
    """Run `args.clients` clients for `args.seconds`: service transfers, or ledger calls when
    `accounts` are given."""
    jobs = [
        ClientJob(url, tenant, wallets, accounts or [], args.seconds, seed, hot, accounts is None)
        for seed in range(args.clients)
    ]
    with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
        results = pool.map(client, jobs)
    latencies = sorted(latency for _, timings in results for latency in timings)
    return {
        "rate": round(sum(count for count, _ in results) / args.seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


def transfer_once(session: Session, keyed: KeyedTransfer, catalogue: Catalogue) -> None:
    """One transfer as the API makes it (`transfers_once`), in the session's transaction."""
    connection = session.connection().connection.driver_connection
    assert connection is not None
    (answer,) = transfers_once(connection, [keyed], catalogue)
    if isinstance(answer, WalletError):
        raise answer
    answer.unwrap()  # raises the refusal's error


def client(job: ClientJob) -> tuple[int, list[float]]:
    """One transfer per call, each in its own unit of work; with `hot`, all to one account."""
    rng = random.Random(job.seed)
    engine = make_engine(job.url, pool_size=1)
    sessions = make_session_factory(engine)
    catalogue = load_catalogue()
    latencies: list[float] = []
    deadline = time.perf_counter() + job.seconds
    while (start := time.perf_counter()) < deadline:
        source = rng.randrange(1, ACCOUNTS)
        destination = 0 if job.hot else rng.randrange(ACCOUNTS)
        if destination == source:
            continue
        amount = rng.randint(1, 100)
        if job.through_service:
            request = TransferRequest(
                job.tenant, job.wallets[source], job.wallets[destination], ASSET, amount
            )
            keyed = KeyedTransfer(request, IdempotencyKey(job.tenant, new_id("key"), ""))
            run_transaction(sessions, lambda s, k=keyed: transfer_once(s, k, catalogue))
        else:
            posting = move(job.accounts[source], job.accounts[destination], amount)
            run_transaction(sessions, lambda s, r=posting: ledger.post(s, r))
        latencies.append(time.perf_counter() - start)
    engine.dispose()
    return len(latencies), latencies


def move(source: int, destination: int, amount: int) -> TransactionRequest:
    return TransactionRequest(
        Reason.TRANSFER, [Posting(source, -amount), Posting(destination, amount)]
    )


def batch_rate(url: str, accounts: list[int], seconds: float) -> float:
    """The batch call: BATCH ledger transactions per call, one client per core."""
    clients = os.cpu_count() or 2
    jobs = [ClientJob(url, "", [], accounts, seconds, seed) for seed in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        counts = pool.map(batch_client, jobs)
    return round(sum(counts) / seconds, 1)


def batch_client(job: ClientJob) -> int:
    rng = random.Random(job.seed)
    engine = make_engine(job.url, pool_size=1)
    sessions = make_session_factory(engine)
    done = 0
    deadline = time.perf_counter() + job.seconds
    while time.perf_counter() < deadline:
        pairs = [rng.sample(job.accounts, 2) for _ in range(BATCH)]
        batch = [move(a, b, rng.randint(1, 100)) for a, b in pairs]
        results = run_transaction(sessions, lambda s, b=batch: ledger.apply(s, b, atomic=False))
        done += sum(1 for result in results if result.ok)
    engine.dispose()
    return done


def invariants_ok(url: str) -> bool:
    engine = make_engine(url)
    checks = run_transaction(make_session_factory(engine), check_ledger)
    engine.dispose()
    return all(check.ok for check in checks)


if __name__ == "__main__":
    main()
