"""The FastAPI application, built from a runtime by `create_app`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from wallet.api import assets, transfers, wallets, webhook_endpoints
from wallet.api.handlers import install_problem_handlers
from wallet.database import statement_pool
from wallet.deposits import endpoints as deposits
from wallet.deposits.addresses import load_address_book
from wallet.runtime import Runtime
from wallet.webhooks.secrets import SecretBox

DESCRIPTION = """
The app's API to the wallet service.

* Authenticate with an API key: `Authorization: Bearer wk_live_...`. A key belongs to one
  tenant and sees only that tenant's resources; each operation needs one scope (`read`,
  `transfer`, `withdraw`, `operator`).
* Amounts are decimal strings in the asset's unit (`"12.50"` USD), never numbers; ids are
  prefixed strings (`wal_...`, `trf_...`).
* `POST`s that move money need an `Idempotency-Key` header; a retry with the same key gets
  the first answer back, with `Idempotent-Replayed: true`.
* Lists are newest first and paginated by `cursor` (from `next_cursor`) and `limit`.
* Errors are `application/problem+json` documents with a stable `type` URI.
"""


def create_app(runtime: Runtime) -> FastAPI:
    statements = statement_pool(runtime.engine, runtime.settings.database_pool_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        statements.open()
        try:
            yield
        finally:
            statements.close()

    app = FastAPI(
        title="Hybrid wallet API", version="1", description=DESCRIPTION, lifespan=lifespan
    )
    app.state.runtime = runtime
    app.state.statements = statements
    app.state.deposit_address_book = load_address_book(runtime.settings, runtime.catalogue)
    app.state.secret_box = SecretBox.from_settings(runtime.settings)
    install_problem_handlers(app)
    routers = (
        wallets.router,
        transfers.router,
        deposits.router,
        assets.router,
        webhook_endpoints.router,
    )
    for router in routers:
        app.include_router(router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> dict[str, str]:
        """Readiness: the database answers."""
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ready"}

    return app
