"""The `wallet` command: run the processes, migrate, reconcile."""

import os

import typer
import uvicorn

from wallet.assets import store_catalogue
from wallet.database import migrate, unit_of_work
from wallet.ledger.reconcile import check_ledger
from wallet.runtime import build_runtime, database_url
from wallet.settings import load_settings

app = typer.Typer(help="Custodial hybrid wallet service.", no_args_is_help=True)
db = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db, name="db")


@db.command("migrate")
def db_migrate() -> None:
    """Bring the schema to the newest revision and store the asset catalogue."""
    runtime = build_runtime(load_settings())
    migrate(runtime.engine)
    with unit_of_work(runtime.sessions) as session:
        store_catalogue(session, runtime.catalogue)
    typer.echo("database is up to date")


@app.command()
def reconcile() -> None:
    """Check every ledger invariant; exit 1 if any is violated."""
    runtime = build_runtime(load_settings())
    with unit_of_work(runtime.sessions) as session:
        checks = check_ledger(session)
    for check in checks:
        typer.echo(f"{'ok  ' if check.ok else 'FAIL'} {check.name}")
        for line in check.violations[:20]:
            typer.echo(f"       {line}")
        if len(check.violations) > 20:
            typer.echo(f"       ... and {len(check.violations) - 20} more")
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
def run() -> None:
    """Start everything on the embedded defaults: PostgreSQL, migrations, the API."""
    settings = load_settings()
    url = database_url(settings)
    os.environ["WALLET_DATABASE_URL"] = url
    typer.echo(f"database: {url}")
    db_migrate()
    serve()
