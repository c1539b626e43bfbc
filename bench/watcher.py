"""Deposit watcher catch-up and live latency next to raw batched JSON-RPC on the same Anvil.

Usage: python bench/watcher.py [--blocks 10000] [--deposits 2000] [--addresses 1000]
                               [--big-addresses 100000] [--samples 100]
Prints one JSON line. The server is WALLET_BENCH_DATABASE_URL (an administrative URL) or the
embedded PostgreSQL. The generated chain is kept under --cache-dir with Anvil's --dump-state and
reloaded with --load-state, so reruns skip the slow part (Anvil mines about 100 blocks/s).

Measured in one run, on one Anvil:
- raw_blocks_per_s: the follower's own RPC pattern (blocks with transactions and token logs in
  one batch per 500 blocks, then receipts of ETH transfers to watched addresses), nothing else;
- watcher_blocks_per_s: `DepositWatcher` from block 0 until every deposit is credited, in a
  fresh process on a fresh database, with 1,000 and then 100,000 deposit addresses (peak RSS
  of that process);
- seen_latency_ms: live, from `anvil_mine` returning a block with a deposit to that deposit's
  row being visible in the database, with the default poll interval.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import repo_first  # noqa: F401 (first: the path to the service, see its docstring)
from sqlalchemy import make_url, text

from chains import AddressSet, RpcCall, RpcClient
from chains.devnet import DevChain, Devnet, dev_accounts, start_dev_chain
from chains.follower import TRANSFER_TOPIC
from custody import MasterSeed
from wallet.assets.service import Catalogue, load_catalogue, store_catalogue
from wallet.database import make_engine, make_session_factory, migrate, unit_of_work
from wallet.deposits.addresses import DepositAddressBook
from wallet.deposits.lease import ChainLease
from wallet.deposits.watcher import (
    DepositWatcher,
    chain_follower,
    freeze_startup_objects,
    poll_interval_for,
)
from wallet.embedded_postgres import start_embedded_postgres

CHAIN = "devnet"
CHAIN_ID = 31337
BENCH_MNEMONIC = " ".join(["abandon"] * 11 + ["about"])  # a test vector, never real funds
BATCH = 500


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=10_000)
    parser.add_argument("--deposits", type=int, default=2_000)
    parser.add_argument("--addresses", type=int, default=1_000)
    parser.add_argument("--big-addresses", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--cache-dir", type=Path, default=Path(".wallet/bench"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # a catch-up run in its own process
    parser.add_argument("--rpc-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(catch_up_worker(args.worker, args.rpc_url, args.token)))
        return

    args.cache_dir.mkdir(parents=True, exist_ok=True)
    addresses = deposit_addresses(args.cache_dir, max(args.addresses, args.big_addresses))
    state, meta = generated_chain(args, addresses[: args.addresses])
    server = os.environ.get("WALLET_BENCH_DATABASE_URL") or start_embedded_postgres(
        Path(tempfile.mkdtemp(prefix="wallet-bench-"))
    )
    devnet = Devnet(chain_id=CHAIN_ID, load_state=state, extra_args=["--quiet"])
    with devnet:
        last = devnet.block_number()
        figures: dict[str, Any] = {
            "blocks": last + 1,
            "deposits": meta["deposits"],
            "addresses": args.addresses,
        }
        watched = AddressSet(addresses[: args.addresses])
        raw_seconds = raw_fetch(devnet.rpc, meta["token"], watched, last)
        figures["raw_blocks_per_s"] = round((last + 1) / raw_seconds)

        small_url = prepared_database(server, "wallet_bench_watch", addresses[: args.addresses])
        small = run_worker(small_url, devnet.rpc_url, meta["token"])
        if small["deposits_credited"] != meta["deposits"]:
            raise SystemExit(f"credited {small['deposits_credited']} of {meta['deposits']}")
        figures["watcher_blocks_per_s"] = round(small["blocks"] / small["seconds"])
        figures["ratio"] = round(figures["watcher_blocks_per_s"] / figures["raw_blocks_per_s"], 2)
        figures["peak_rss_mb"] = small["peak_rss_mb"]

        latencies = seen_latencies(small_url, devnet, meta["token"], addresses, args.samples)
        figures["seen_latency_ms"] = {
            "p50": round(statistics.median(latencies), 1),
            "p99": round(statistics.quantiles(latencies, n=100)[98], 1),
            "poll_interval_s": poll_interval_for(load_catalogue().chain(CHAIN)),
        }

        big_url = prepared_database(server, "wallet_bench_watch_big", addresses)
        devnet_for_big = run_worker(big_url, devnet.rpc_url, meta["token"], until=last)
        figures["big_addresses"] = len(addresses)
        figures["big_watcher_blocks_per_s"] = round(
            devnet_for_big["blocks"] / devnet_for_big["seconds"]
        )
        figures["big_vs_small"] = round(
            figures["big_watcher_blocks_per_s"] / figures["watcher_blocks_per_s"], 2
        )
        figures["big_peak_rss_mb"] = devnet_for_big["peak_rss_mb"]
    print(json.dumps(figures))


# --- the chain -------------------------------------------------------------------------


def deposit_addresses(cache: Path, count: int) -> list[str]:
    """Deposit addresses 0..count-1 of the bench seed on the chain (derived once, then cached)."""
    path = cache / f"addresses-{CHAIN_ID}-{count}.txt"
    if path.exists():
        return path.read_text().split()
    chain = load_catalogue().chain(CHAIN)
    book = DepositAddressBook.from_seed(MasterSeed.from_mnemonic(BENCH_MNEMONIC), [chain])
    addresses = [book.address(CHAIN, i) for i in range(count)]
    path.write_text("\n".join(addresses))
    return addresses


def generated_chain(args: argparse.Namespace, targets: list[str]) -> tuple[Path, dict[str, Any]]:
    """About `blocks` blocks with `deposits` ETH and USDC deposits to `targets`, as a state file."""
    stem = f"chain-{args.blocks}-{args.deposits}-{len(targets)}"
    state, meta_path = args.cache_dir / f"{stem}.json", args.cache_dir / f"{stem}.meta.json"
    if state.exists() and meta_path.exists():
        return state, json.loads(meta_path.read_text())
    print(f"generating {stem} (once; cached in {args.cache_dir})", file=sys.stderr)
    chain = start_dev_chain(extra_args=["--quiet", "--dump-state", str(state)])
    try:
        deposits = build(chain, args.blocks, args.deposits, targets)
        meta = {"token": chain.token_address, "deposits": deposits}
    finally:
        chain.devnet.stop()
    meta_path.write_text(json.dumps(meta))
    return state, meta


def build(chain: DevChain, blocks: int, deposits: int, targets: list[str]) -> int:
    rng = random.Random(7)
    per_block = 5
    busy = deposits // per_block
    gap = max(0, blocks // busy - 1)
    senders = [a.address for a in chain.accounts[1:]]
    sent = 0
    for _ in range(busy):
        for _ in range(per_block):
            to = targets[sent % len(targets)]
            sender = rng.choice(senders)
            if sent % 2:
                chain.send_tokens(sender, to, rng.randint(10**5, 10**9))
            else:
                chain.send_eth(sender, to, rng.randint(10**15, 10**17))
            sent += 1
        chain.mine()
        if gap:
            chain.mine(gap)
    chain.mine(10)
    return sent


def raw_fetch(rpc: RpcClient, token: str, watched: AddressSet, last: int) -> float:
    """Seconds to fetch what the follower needs for blocks 0..last, with nothing around it."""
    began = time.perf_counter()
    for first in range(0, last + 1, BATCH):
        end = min(last, first + BATCH - 1)
        calls = [RpcCall("eth_getBlockByNumber", (hex(n), True)) for n in range(first, end + 1)]
        log_filter = {
            "fromBlock": hex(first),
            "toBlock": hex(end),
            "address": [token],
            "topics": [TRANSFER_TOPIC],
        }
        replies = rpc.batch([*calls, RpcCall("eth_getLogs", (log_filter,))])
        receipts = [
            RpcCall("eth_getTransactionReceipt", (tx["hash"],))
            for block in replies[:-1]
            for tx in block["transactions"]
            if tx.get("to") and tx["value"] != "0x0" and tx["to"] in watched
        ]
        rpc.batch(receipts)
    return time.perf_counter() - began


# --- databases and the watcher ---------------------------------------------------------


def bench_catalogue(rpc_url: str, token: str) -> Catalogue:
    catalogue = load_catalogue()
    chains = dict(catalogue.chains)
    chains[CHAIN] = type(chains[CHAIN])(CHAIN, CHAIN_ID, rpc_url, chains[CHAIN].confirmations)
    assets = dict(catalogue.assets)
    usdc = assets["USDC"]
    assets["USDC"] = type(usdc)(
        usdc.code, usdc.kind, usdc.decimals, usdc.chain, token, usdc.min_deposit
    )
    return Catalogue(chains=chains, assets=assets)


def prepared_database(server: str, name: str, addresses: list[str]) -> str:
    """A fresh, migrated database with one tenant and a wallet per deposit address."""
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate(engine)
    with unit_of_work(make_session_factory(engine)) as session:
        store_catalogue(session, load_catalogue())
        session.execute(text("INSERT INTO tenants (id, name) VALUES ('ten_bench', 'bench')"))
        # Bulk rows instead of one service call each: 100,000 addresses in seconds.
        session.execute(
            text(
                "INSERT INTO wallets (id, tenant_id, owner_ref) "
                "SELECT 'wal_bench' || i, 'ten_bench', 'user' || i "
                "FROM generate_series(0, :n - 1) i"
            ),
            {"n": len(addresses)},
        )
        session.execute(
            text(
                "INSERT INTO deposit_address_counters (chain, bip44_account, next_index) "
                "VALUES (:chain, :account, :n)"
            ),
            {"chain": CHAIN, "account": CHAIN_ID, "n": len(addresses)},
        )
        session.execute(
            text(
                "INSERT INTO deposit_addresses "
                "(id, tenant_id, wallet_id, chain, derivation_index, address) "
                "SELECT 'dad_bench' || i, 'ten_bench', 'wal_bench' || i, :chain, i, a "
                "FROM unnest(CAST(:addresses AS text[])) WITH ORDINALITY AS t(a, o), "
                "LATERAL (SELECT o - 1 AS i) x"
            ),
            {"chain": CHAIN, "addresses": addresses},
        )
        # Statistics of the tables filled here, as a live database has them. The ledger, deposit
        # and outbox tables start empty and stay unanalyzed, as on a new database: statistics
        # saying "empty" would have the ledger's cached plans scan them sequentially for the
        # whole run, since nothing analyzes them again within it.
        session.execute(
            text("ANALYZE assets, tenants, wallets, deposit_address_counters, deposit_addresses")
        )
    engine.dispose()
    return url


def run_worker(
    database_url: str, rpc_url: str, token: str, until: int | None = None
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", database_url]
    command += ["--rpc-url", rpc_url, "--token", token]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def catch_up_worker(database_url: str, rpc_url: str, token: str) -> dict[str, Any]:
    """Follow from block 0 until caught up with the head; the figures of that run."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with RpcClient(rpc_url) as rpc:
        catalogue = bench_catalogue(rpc_url, token)
        source = chain_follower(catalogue, CHAIN, rpc, start_block=0)
        watcher = DepositWatcher(sessions, catalogue, CHAIN, source)
        freeze_startup_objects()  # as `wallet watch` does
        blocks = 0
        began = time.perf_counter()
        while True:
            outcome = watcher.step()
            blocks += outcome.blocks
            if outcome.caught_up:
                break
        seconds = time.perf_counter() - began
    with unit_of_work(sessions) as session:
        credited = session.execute(
            text("SELECT count(*) FROM deposits WHERE status = 'credited'")
        ).scalar_one()
    return {
        "blocks": blocks,
        "seconds": seconds,
        "deposits_credited": credited,
        "watched": watcher.watched_count,
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return -1


def seen_latencies(
    database_url: str, devnet: Devnet, token: str, addresses: list[str], samples: int
) -> list[float]:
    """Milliseconds from a block with a deposit being mined to the deposit being recorded."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    catalogue = bench_catalogue(devnet.rpc_url, token)
    rpc = RpcClient(devnet.rpc_url)
    watcher = DepositWatcher(sessions, catalogue, CHAIN, chain_follower(catalogue, CHAIN, rpc))
    stop = threading.Event()
    thread = threading.Thread(
        target=watcher.run, args=(ChainLease.for_engine(engine, CHAIN), stop), daemon=True
    )
    thread.start()
    rng = random.Random(11)
    sender = dev_accounts()[1].address
    latencies = []
    try:
        with engine.connect() as connection:
            for i in range(samples):
                tx = devnet.send_eth(sender, addresses[i % len(addresses)], 10**15 + i)
                time.sleep(rng.uniform(0, 0.3))  # land anywhere in the watcher's poll cycle
                devnet.mine()
                mined = time.perf_counter()
                while not connection.execute(
                    text("SELECT EXISTS (SELECT 1 FROM deposits WHERE tx_hash = :tx)"), {"tx": tx}
                ).scalar_one():
                    connection.rollback()
                    time.sleep(0.001)
                connection.rollback()
                latencies.append((time.perf_counter() - mined) * 1000)
    finally:
        stop.set()
        thread.join(timeout=30)
        rpc.close()
        engine.dispose()
    return latencies


if __name__ == "__main__":
    main()
