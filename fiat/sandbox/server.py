"""Running the sandbox bank: `serve(options)` in this process, `main()` from a command line."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from fiat.sandbox.app import create_app
from fiat.sandbox.bank import Timings
from fiat.sandbox.settings import DEFAULT_API_KEY, Options

# Seconds an idle connection stays open: longer than clients keep theirs (httpx 5 s), so
# that no client sends a request on a connection the server is closing.
KEEP_ALIVE_SECONDS = 75


def serve(options: Options) -> None:
    """Serve the sandbox bank until SIGINT or SIGTERM."""
    config = uvicorn.Config(
        create_app(options),
        host=options.host,
        port=options.port,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        log_level="warning",
        access_log=False,
    )
    uvicorn.Server(config).run()


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m fiat.sandbox", description="A sandbox bank with its own HTTP API."
    )
    defaults = Options()
    timings = Timings()
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--data", type=Path, default=defaults.data_path, help="SQLite file")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help=f"accepted bearer key; repeatable (default {DEFAULT_API_KEY})",
    )
    parser.add_argument("--webhook-url", help="where events are POSTed")
    parser.add_argument("--webhook-secret", help="Standard Webhooks secret, whsec_...")
    parser.add_argument("--processing-delay", type=float, default=timings.processing)
    parser.add_argument("--settle-delay", type=float, default=timings.settle)
    parser.add_argument("--return-delay", type=float, default=timings.returned)
    parser.add_argument("--chargeback-delay", type=float, default=timings.chargeback)
    parser.add_argument(
        "--auto-pay-delay",
        type=float,
        help="customers pay pending pay-ins by themselves after this many seconds",
    )
    parser.add_argument("--tick", type=float, default=defaults.tick)
    parser.add_argument("--webhook-timeout", type=float, default=defaults.webhook_timeout)
    parser.add_argument("--webhook-retry-base", type=float, default=defaults.webhook_retry_base)
    parser.add_argument("--webhook-retry-max", type=float, default=defaults.webhook_retry_max)
    parser.add_argument("--webhook-max-attempts", type=int, default=defaults.webhook_max_attempts)
    parser.add_argument(
        "--webhook-batch",
        type=int,
        default=defaults.webhook_batch,
        help="at most this many events in one webhook delivery",
    )
    args = parser.parse_args(argv)
    if args.webhook_url and not args.webhook_secret:
        parser.error("--webhook-url needs --webhook-secret")
    if args.webhook_batch < 1:
        parser.error("--webhook-batch must be at least 1")
    return Options(
        data_path=args.data,
        host=args.host,
        port=args.port,
        api_keys=tuple(args.api_keys or defaults.api_keys),
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        timings=Timings(
            processing=args.processing_delay,
            settle=args.settle_delay,
            returned=args.return_delay,
            chargeback=args.chargeback_delay,
            auto_pay=args.auto_pay_delay,
        ),
        tick=args.tick,
        webhook_timeout=args.webhook_timeout,
        webhook_retry_base=args.webhook_retry_base,
        webhook_retry_max=args.webhook_retry_max,
        webhook_max_attempts=args.webhook_max_attempts,
        webhook_batch=args.webhook_batch,
    )


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    serve(parse_options(argv))
