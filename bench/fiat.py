"""Pay-ins over HTTP until the sandbox bank's webhooks have credited every one, next to as many
internal transfers over HTTP in the same run; prints one JSON line.

Usage: python bench/fiat.py [--count 1000] [--clients 16] [--wallets 100] [--tick 0.02]
The server is WALLET_BENCH_DATABASE_URL (an administrative URL) or the embedded PostgreSQL.

Real processes: the API (uvicorn, one worker per core) on a fresh database prepared by
`bench/ledger.py` (10,000 funded wallets), and the sandbox bank (`python -m fiat.sandbox`) with
its webhooks pointed at the API. Its customers pay at once (`--auto-pay-delay 0`) and their
pay-ins settle at once, so what is measured is the two processes and the webhooks between
them, not the bank's pretended delays.
- transfers_per_s: `--count` `POST /v1/transfers` over `--clients` connections;
- payins_per_s: `--count` `POST /v1/payins` over as many connections, from the first request
  until the last pay-in is credited by the bank's `payin.succeeded` webhook;
- p50_ms/p99_ms: from each `payin.succeeded` event at the bank (its `created_at`) to the
  pay-in credited in our database (its `updated_at` once `succeeded`).
"""

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import repo_first  # noqa: F401 (first: the path to the service, see its docstring)
from ledger import fresh_database, invariants_ok, prepare
from serving import (
    Connection,
    api_key,
    api_server,
    database_server,
    free_port,
    post_head,
    progress,
    wait_for_status,
)

from fiat.sandbox import Options, SandboxControl, Timings, start_sandbox
from wallet.apikeys.models import Scope

BANK_KEY = "sk_sandbox_bench"
BANK_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
PAYIN_AMOUNT = "10.00"  # cents 00: the sandbox lets it succeed
TIMEOUT = 300.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--wallets", type=int, default=100)
    parser.add_argument("--tick", type=float, default=0.02)
    args = parser.parse_args()

    url = fresh_database(database_server(), "wallet_bench_fiat")
    tenant, wallets = prepare(url)
    secret = api_key(url, tenant, [Scope.TRANSFER, Scope.READ])
    workers = os.cpu_count() or 2
    bank_port = free_port()
    settings = {
        "WALLET_BANK_PROVIDER": "sandbox",
        "WALLET_BANK_URL": f"http://127.0.0.1:{bank_port}",
        "WALLET_BANK_API_KEY": BANK_KEY,
        "WALLET_BANK_WEBHOOK_SECRET": BANK_SECRET,
    }
    figures: dict[str, Any] = {
        "count": args.count,
        "clients": args.clients,
        "wallets": args.wallets,
        "api_workers": workers,
        "bank_tick_s": args.tick,
    }
    with (
        api_server(url, workers, settings) as port,
        sandbox_bank(bank_port, port, args.tick) as control,
    ):
        accounts = link_accounts(port, secret, wallets[: args.wallets])
        rng = random.Random(1)
        transfers = [transfer_body(rng, wallets) for _ in range(args.count)]
        sent = asyncio.run(post_all(port, secret, "/v1/transfers", transfers, args.clients))
        figures["transfers_per_s"] = round(args.count / sent.seconds, 1)
        figures["transfer_p99_ms"] = sent.p99_ms()
        progress("transfers", {"seconds": round(sent.seconds, 2), "unavailable": sent.unavailable})

        pairs = [accounts[i % len(accounts)] for i in range(args.count)]
        payins = [payin_body(wallet, account) for wallet, account in pairs]
        began = time.time()
        sent = asyncio.run(post_all(port, secret, "/v1/payins", payins, args.clients))
        progress(
            "payins requested", {"seconds": round(sent.seconds, 2), "unavailable": sent.unavailable}
        )
        figures["payin_requests_per_s"] = round(args.count / sent.seconds, 1)
        figures["payin_request_p99_ms"] = sent.p99_ms()
        figures["payin_requests_503"] = sent.unavailable
        credited = wait_for_status(
            url, "payins", "succeeded", args.count, timeout=TIMEOUT, key="provider_payment_id"
        )
        events = {
            event["payment_id"]: datetime.fromisoformat(event["created_at"]).timestamp()
            for event in control.events()
            if event["type"] == "payin.succeeded"
        }
        figures["webhook_retries"] = sum(max(0, e["attempts"] - 1) for e in control.events())
    figures["payins_per_s"] = round(args.count / (max(credited.values()) - began), 1)
    figures["ratio"] = round(figures["payins_per_s"] / figures["transfers_per_s"], 3)
    latencies = sorted(at - events[payment] for payment, at in credited.items())
    figures["p50_ms"] = round(statistics.median(latencies) * 1000, 1)
    figures["p99_ms"] = round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1)
    figures["invariants_ok"] = invariants_ok(url)
    print(json.dumps(figures))


@contextmanager
def sandbox_bank(port: int, api_port: int, tick: float) -> Iterator[SandboxControl]:
    """The sandbox bank as a process, its webhooks to the API, its customers paying at once."""
    options = Options(
        data_path=Path(tempfile.mkdtemp(prefix="wallet-bench-bank-")) / "bank.sqlite3",
        port=port,
        api_keys=(BANK_KEY,),
        webhook_url=f"http://127.0.0.1:{api_port}/v1/fiat/webhooks/sandbox",
        webhook_secret=BANK_SECRET,
        timings=Timings(processing=0.0, settle=0.0, auto_pay=0.0),
        tick=tick,
    )
    bank = start_sandbox(options)
    control = SandboxControl(options.url, BANK_KEY)
    try:
        yield control
    finally:
        control.close()
        bank.stop()


def link_accounts(port: int, secret: str, wallets: list[str]) -> list[tuple[str, str]]:
    """A USD bank account linked to each wallet; (wallet, bank account) pairs."""
    pairs = []
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {secret}"}
    ) as client:
        for index, wallet in enumerate(wallets):
            body = {
                "wallet_id": wallet,
                "holder_name": "Bench Customer",
                "account_number": f"US{index + 1:08d}",
                "currency": "USD",
                "country": "US",
            }
            response = client.post("/v1/bank-accounts", json=body)
            response.raise_for_status()
            pairs.append((wallet, response.json()["id"]))
    return pairs


def transfer_body(rng: random.Random, wallets: list[str]) -> bytes:
    source, destination = rng.sample(wallets, 2)
    cents = rng.randint(1, 100)
    return json.dumps(
        {
            "source_wallet_id": source,
            "destination_wallet_id": destination,
            "asset": "USD",
            "amount": f"{cents // 100}.{cents % 100:02d}",
        }
    ).encode()


def payin_body(wallet: str, bank_account: str) -> bytes:
    return json.dumps(
        {
            "wallet_id": wallet,
            "bank_account_id": bank_account,
            "asset": "USD",
            "amount": PAYIN_AMOUNT,
        }
    ).encode()


@dataclass
class Sent:
    """Requests posted, each answered 201 in the end: their latencies, how many 503 answers
    were retried, and the phase's duration."""

    latencies: list[float] = field(default_factory=list)
    unavailable: int = 0
    seconds: float = 0.0

    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1)


async def post_all(port: int, secret: str, path: str, bodies: list[bytes], clients: int) -> Sent:
    """Post every body to `path` over `clients` connections, each with its own key."""
    sent = Sent()
    todo = list(reversed(bodies))

    async def client(connection: Connection) -> None:
        while todo:
            body = todo.pop()
            head = post_head(port, path, secret, body)
            started = time.perf_counter()
            # A 503 (no database connection, or no turn at the bank, came free in time) is
            # retried under the same key.
            while (answered := await connection.post(head, body))[0] == 503:
                sent.unavailable += 1
                await asyncio.sleep(0.05)
            status, answer = answered
            if status != 201:
                raise RuntimeError(f"{path} refused ({status}): {answer.decode()}")
            sent.latencies.append(time.perf_counter() - started)

    connections = [await Connection.open(port) for _ in range(clients)]
    began = time.perf_counter()
    await asyncio.gather(*(client(connection) for connection in connections))
    sent.seconds = time.perf_counter() - began
    for connection in connections:
        connection.close()
    return sent


if __name__ == "__main__":
    main()
