"""POST /v1/transfers over HTTP next to the service-layer transfer rate; prints one JSON line.

Uvicorn runs with one worker per core on a fresh database prepared by `bench/ledger.py`
(10,000 funded wallets). In the same run: the service layer (`wallet.transfers.service`, one
unit of work per transfer) with `--clients` concurrent client processes; HTTP with
`--http-clients` concurrent connections, each request with its own `Idempotency-Key`; then
HTTP paced at `--rate` requests/s, whose latencies count from each request's scheduled time
(no coordinated omission).

Usage: python bench/api.py [--seconds 10] [--clients 8] [--http-clients 64] [--rate 500]
The server is WALLET_BENCH_DATABASE_URL (an administrative URL) or the embedded PostgreSQL.
"""

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import repo_first  # noqa: F401 (first: the path to the service, see its docstring)
from ledger import fresh_database, invariants_ok, prepare, run_clients
from serving import Connection, api_key, api_server, database_server, post_head, progress

from wallet.apikeys.models import Scope

PACED_CONNECTIONS = 64


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--http-clients", type=int, default=64)
    parser.add_argument("--rate", type=int, default=500)
    args = parser.parse_args()

    url = fresh_database(database_server(), "wallet_bench_api")
    tenant, wallets = prepare(url)
    secret = api_key(url, tenant, [Scope.TRANSFER])
    workers = os.cpu_count() or 2

    figures: dict[str, Any] = {"clients": args.clients, "seconds": args.seconds}
    figures["http_clients"] = args.http_clients
    figures["api_workers"] = workers
    service = run_clients(url, tenant, wallets, args, hot=False)
    progress("service layer", service)
    figures["service_transfers_per_s"] = service["rate"]
    figures["service_p50_ms"], figures["service_p99_ms"] = service["p50_ms"], service["p99_ms"]
    # The load generator's own full garbage collections would count as the server's latency.
    gc.freeze()
    with api_server(url, workers) as port:
        saturated = asyncio.run(
            http_saturated(
                Load(port, secret, wallets, random.Random(1)), args.http_clients, args.seconds
            )
        )
        figures["http_transfers_per_s"] = saturated["rate"]
        figures["p50_ms"], figures["p99_ms"] = saturated["p50_ms"], saturated["p99_ms"]
        figures["http_errors"] = saturated["errors"]
        progress("http", saturated)
        paced = asyncio.run(
            http_paced(Load(port, secret, wallets, random.Random(2)), args.rate, args.seconds)
        )
        figures["paced_rate"] = args.rate
        figures["paced_achieved_per_s"] = paced["rate"]
        figures["paced_p50_ms"], figures["paced_p99_ms"] = paced["p50_ms"], paced["p99_ms"]
        figures["paced_errors"] = paced["errors"]
    figures["ratio"] = round(figures["http_transfers_per_s"] / service["rate"], 3)
    figures["invariants_ok"] = invariants_ok(url)
    print(json.dumps(figures))


@dataclass
class Load:
    """Transfers to post to the API, and what became of them."""

    port: int
    secret: str
    wallets: list[str]
    rng: random.Random
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    async def post_transfer(self, connection: Connection, started: float) -> None:
        source, destination = self.rng.sample(self.wallets, 2)
        cents = self.rng.randint(1, 100)
        body = json.dumps(
            {
                "source_wallet_id": source,
                "destination_wallet_id": destination,
                "asset": "USD",
                "amount": f"{cents // 100}.{cents % 100:02d}",
            }
        ).encode()
        head = post_head(self.port, "/v1/transfers", self.secret, body)
        status, _ = await connection.post(head, body)
        if status == 201:
            self.latencies.append(time.perf_counter() - started)
        else:
            self.errors += 1

    def figures(self, elapsed: float) -> dict[str, float]:
        latencies = sorted(self.latencies)
        return {
            "rate": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
            "errors": self.errors,
        }


async def http_saturated(load: Load, clients: int, seconds: float) -> dict[str, float]:
    """`clients` closed-loop clients, each on its own connection, for `seconds`."""
    connections = [await Connection.open(load.port) for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    async def client(connection: Connection) -> None:
        while (started := time.perf_counter()) < deadline:
            await load.post_transfer(connection, started)

    start = time.perf_counter()
    await asyncio.gather(*(client(connection) for connection in connections))
    elapsed = time.perf_counter() - start
    for connection in connections:
        connection.close()
    return load.figures(elapsed)


async def http_paced(load: Load, rate: int, seconds: float) -> dict[str, float]:
    """Requests due at a fixed `rate` whatever the answers' pace, over a pool of connections;
    each latency counts from when its request was due."""
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(PACED_CONNECTIONS):
        idle.put_nowait(await Connection.open(load.port))

    async def send(due: float) -> None:
        connection = await idle.get()
        await load.post_transfer(connection, due)
        idle.put_nowait(connection)

    start = time.perf_counter()
    sending = []
    for index in range(int(rate * seconds)):
        due = start + index / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        sending.append(asyncio.create_task(send(due)))
    await asyncio.gather(*sending)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    return load.figures(elapsed)


if __name__ == "__main__":
    main()
