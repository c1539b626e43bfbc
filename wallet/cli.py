"""The `wallet` command: run the processes (API, worker, beat), migrate, reconcile."""

import base64
import logging
import os
import signal
import sys
import threading
from typing import Annotated

import httpx
import typer
import uvicorn

import fiat.sandbox
from chains import TraceMode, WrongChain
from wallet.apikeys.models import Scope
from wallet.apikeys.service import create_key_for_tenant, list_keys, revoke_key
from wallet.assets.service import load_catalogue, store_catalogue
from wallet.banking.service import bank_for_a_command, provider_check, restricted_wallets
from wallet.celery_app import run_beat, run_worker
from wallet.database import migrate, unit_of_work
from wallet.deposits.errors import InconsistentChainState, WatcherHalted
from wallet.deposits.watcher import WatcherOptions, configure_logging
from wallet.deposits.watcher import watch as run_watch
from wallet.devnet import DevnetError, local_chains, run_devnets
from wallet.errors import WalletError
from wallet.ledger.reconcile import check_ledger
from wallet.runtime import database_url, open_runtime
from wallet.settings import Settings, load_settings
from wallet.supervisor import Backoff, Process, supervise
from wallet.tenants.service import tenant_by_name
from wallet.withdrawals.tasks import hot_wallet_signers

app = typer.Typer(help="Custodial hybrid wallet service.", no_args_is_help=True)
db = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db, name="db")
keys = typer.Typer(help="API keys of the tenants.", no_args_is_help=True)
app.add_typer(keys, name="keys")


@db.command("migrate")
def db_migrate() -> None:
    """Bring the schema to the newest revision and store the asset catalogue."""
    with open_runtime(load_settings()) as runtime:
        migrate(runtime.engine)
        with unit_of_work(runtime.sessions) as session:
            store_catalogue(session, runtime.catalogue)
    typer.echo("database is up to date")


@keys.command("create")
def keys_create(
    tenant: str = typer.Option(..., help="The tenant's name; a new name creates the tenant."),
    scopes: str = typer.Option(..., help=f"Comma-separated, among: {', '.join(Scope)}."),
    label: str | None = typer.Option(None, help="A note on what the key is for."),
) -> None:
    """Make a new API key and print its secret, which is shown only this once."""
    try:
        wanted = [Scope(name.strip()) for name in scopes.split(",") if name.strip()]
    except ValueError as error:
        raise typer.BadParameter(f"{error}; scopes are: {', '.join(Scope)}") from None
    try:
        with open_runtime(load_settings()) as runtime, unit_of_work(runtime.sessions) as session:
            owner, issued = create_key_for_tenant(session, tenant, wanted, label)
    except WalletError as error:
        raise typer.BadParameter(error.detail) from None
    typer.echo(f"tenant  {owner.id} ({owner.name})")
    typer.echo(f"key     {issued.key.id}")
    typer.echo(f"scopes  {','.join(issued.key.scopes)}")
    typer.echo(f"secret  {issued.secret}")
    typer.echo("The secret is not stored and will not be shown again.", err=True)


@keys.command("list")
def keys_list(tenant: str | None = typer.Option(None, help="Only this tenant's keys.")) -> None:
    """List the keys (never their secrets), revoked ones included."""
    with open_runtime(load_settings()) as runtime, unit_of_work(runtime.sessions) as session:
        tenant_id = None
        if tenant is not None:
            found = tenant_by_name(session, tenant)
            if found is None:
                raise typer.BadParameter(f"no tenant named {tenant!r}")
            tenant_id = found.id
        for key in list_keys(session, tenant_id):
            state = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
            typer.echo(
                f"{key.id}  {key.tenant_id}  {','.join(key.scopes):<32}  {state:<24}  "
                f"{key.label or ''}"
            )


@keys.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: requests with it are refused from now on."""
    try:
        with open_runtime(load_settings()) as runtime, unit_of_work(runtime.sessions) as session:
            key = revoke_key(session, key_id)
    except WalletError as error:
        raise typer.BadParameter(error.detail) from None
    typer.echo(f"revoked {key.id} at {key.revoked_at:%Y-%m-%d %H:%M:%S %Z}")


@app.command()
def reconcile() -> None:
    """Check every ledger invariant and the ledger against the bank's report; list restricted
    wallets. Exit 1 if anything disagrees (or the bank cannot be asked)."""
    settings = load_settings()
    with (
        bank_for_a_command(settings) as bank,
        open_runtime(settings) as runtime,
        unit_of_work(runtime.sessions) as session,
    ):
        checks = check_ledger(session)
        if bank is not None:
            checks.append(provider_check(session, bank))
        restricted = restricted_wallets(session)
    for check in checks:
        typer.echo(f"{'ok  ' if check.ok else 'FAIL'} {check.name}")
        for line in check.violations[:20]:
            typer.echo(f"       {line}")
        if len(check.violations) > 20:
            typer.echo(f"       ... and {len(check.violations) - 20} more")
    if restricted:
        typer.echo("restricted wallets (negative balances after a return or chargeback):")
        for line in restricted:
            typer.echo(f"       {line}")
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


@app.command()
def serve() -> None:
    """Run the HTTP API under uvicorn."""
    settings = load_settings()
    typer.echo(f"API listening on http://{settings.api_host}:{settings.api_port}")
    uvicorn.run(
        "wallet.api.main:build",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_level="info",
    )


@app.command()
def worker(
    concurrency: int | None = typer.Option(
        None, min=1, help="Worker processes or threads; Celery's default is one per CPU."
    ),
    pool: str | None = typer.Option(
        None, help="Celery's execution pool (prefork, threads, solo, ...); prefork by default."
    ),
    embed_beat: bool = typer.Option(
        False, "--beat", "-B", help="Run the scheduler in this worker too (development only)."
    ),
    loglevel: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run a Celery worker: relays the outbox and delivers webhooks."""
    status = run_worker(
        load_settings(), concurrency=concurrency, pool=pool, beat=embed_beat, loglevel=loglevel
    )
    raise typer.Exit(status)


@app.command()
def beat(loglevel: str = typer.Option("info", help="debug, info, warning or error.")) -> None:
    """Run Celery beat: schedules the outbox relay and the sweep for due deliveries."""
    raise typer.Exit(run_beat(load_settings(), loglevel=loglevel))


@app.command()
def watch(
    chain: str = typer.Option(..., "--chain", help="A chain of the asset catalogue."),
    start_block: int | None = typer.Option(
        None, help="Where a chain with no cursor yet starts (default: the node's head)."
    ),
    poll_interval: float = typer.Option(0.5, help="Seconds between polls once caught up."),
    batch_blocks: int = typer.Option(500, help="At most this many blocks per step."),
    traces: Annotated[
        TraceMode,
        typer.Option(help="How to find ETH sent by contracts: none, parity, call_tracer."),
    ] = TraceMode.NONE,
) -> None:
    """Follow a chain and record its deposits; one active per chain, others wait (lease)."""
    configure_logging()
    options = WatcherOptions(
        poll_interval=poll_interval,
        batch_blocks=batch_blocks,
        start_block=start_block,
        trace_mode=traces,
    )
    with open_runtime(load_settings()) as runtime:
        try:
            run_watch(runtime.sessions, runtime.engine, runtime.catalogue, chain, options=options)
        except (WatcherHalted, InconsistentChainState, WrongChain) as error:
            logging.getLogger("wallet.deposits").critical("watcher halted: %s", error)
            raise typer.Exit(2) from None


@app.command()
def devnet(
    fresh: bool = typer.Option(False, help="Forget the chains kept in data_dir/anvil."),
) -> None:
    """Run an Anvil node (from npm) per local chain of the catalogue, test stablecoin deployed,
    each chain's hot wallet funded (when a seed is configured).

    The chains are kept in data_dir/anvil between runs; Ctrl-C or SIGTERM stops them.
    """
    settings = load_settings()
    catalogue = load_catalogue(settings.assets_file)
    hot_wallets = {
        chain: signer.address for chain, signer in hot_wallet_signers(settings, catalogue).items()
    }
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        run_devnets(
            catalogue,
            settings.data_dir / "anvil",
            stop,
            typer.echo,
            fresh=fresh,
            hot_wallets=hot_wallets,
        )
    except DevnetError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None


@app.command(
    "fiat-sandbox",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def fiat_sandbox(ctx: typer.Context) -> None:
    """Run the sandbox bank (a process with its own HTTP API and SQLite store in data_dir) on
    the settings' bank URL, key and webhook secret, sending its events to this service's API.

    Further options go to the sandbox as they are (`python -m fiat.sandbox --help`), e.g.
    `--auto-pay-delay 5` to have customers pay pending pay-ins by themselves.
    """
    fiat.sandbox.main([*sandbox_arguments(load_settings()), *ctx.args])


def sandbox_arguments(settings: Settings) -> list[str]:
    """The sandbox bank's command line for these settings: where it listens, its key, and
    where and how it signs its webhooks (our API's webhook route)."""
    address = httpx.URL(settings.bank_url)
    arguments = ["--host", address.host, "--port", str(address.port or 80)]
    arguments += ["--data", str(settings.data_dir / "sandbox-bank.sqlite3")]
    arguments += ["--api-key", settings.bank_api_key.get_secret_value()]
    if settings.bank_webhook_secret is not None:
        webhook = f"http://{settings.api_host}:{settings.api_port}/v1/fiat/webhooks/sandbox"
        arguments += ["--webhook-url", webhook]
        arguments += ["--webhook-secret", settings.bank_webhook_secret.get_secret_value()]
    return arguments


# The embedded profile's deposit addresses come from this development mnemonic unless a seed
# or xpubs are configured; it is public, so nothing of value may ever be sent to them.
DEV_MNEMONIC = "test test test test test test test test test test test junk"


@app.command()
def run(
    restart_delay: float = typer.Option(
        1.0, min=0.01, help="Seconds before restarting a process that exited; doubles each time."
    ),
    restart_delay_max: float = typer.Option(
        60.0, min=0.01, help="The longest delay before a restart."
    ),
) -> None:
    """Everything on the embedded defaults: PostgreSQL, migrations, the Anvil devnets, the API,
    a worker with the periodic jobs, a watcher per chain and the sandbox bank; a process that
    exits is restarted, Ctrl-C or SIGTERM stops them all."""
    settings = load_settings()
    environment = {"WALLET_DATABASE_URL": database_url(settings)}
    if not (settings.deposit_xpubs or settings.seed_keystore or settings.dev_mnemonic):
        environment["WALLET_DEV_MNEMONIC"] = DEV_MNEMONIC
    if settings.bank_webhook_secret is None:
        # The sandbox bank and the API share it through the environment of this run.
        environment["WALLET_BANK_WEBHOOK_SECRET"] = (
            "whsec_" + base64.b64encode(os.urandom(32)).decode()
        )
    os.environ.update(environment)
    db_migrate()
    catalogue = load_catalogue(settings.assets_file)
    processes = [
        _wallet("devnet", "devnet"),
        _wallet("api", "serve"),
        _wallet("worker", "worker", "--beat", "--concurrency", "2"),
        _wallet("fiat sandbox", "fiat-sandbox"),
        *(
            _wallet(f"watcher {chain.name}", "watch", "--chain", chain.name, "--traces", "parity")
            for chain in local_chains(catalogue)
        ),
    ]
    typer.echo(f"API on http://{settings.api_host}:{settings.api_port} (OpenAPI at /docs)")
    backoff = Backoff(first=restart_delay, longest=max(restart_delay, restart_delay_max))
    supervise(processes, environment, backoff, typer.echo)


def _wallet(name: str, *arguments: str) -> Process:
    return Process(name, [sys.executable, "-m", "wallet", *arguments])
