"""The FastAPI application, built from a runtime by `create_app`."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from fiat import BankProvider
from wallet.api import health
from wallet.api.auth import AuthenticateFirst
from wallet.api.bodies import BodyLimit
from wallet.api.contract import install_openapi, operation_id
from wallet.api.handlers import install_problem_handlers
from wallet.apikeys.service import find_active_keys
from wallet.assets import endpoints as assets
from wallet.bank_accounts import endpoints as bank_accounts
from wallet.banking import endpoints as banking
from wallet.banking.errors import BankUnavailable
from wallet.banking.service import FeeSchedule, open_bank
from wallet.batching import Batcher, OneBatchAtATime
from wallet.database import statement_pool
from wallet.deposits import endpoints as deposits
from wallet.payins import endpoints as payins
from wallet.payins.service import KeyedPayin, MadePayin, make_payins
from wallet.payouts import endpoints as payouts
from wallet.ports import address_issuer
from wallet.runtime import Runtime
from wallet.transfers import endpoints as transfers
from wallet.transfers.service import transfers_once
from wallet.wallets import endpoints as wallets
from wallet.webhooks import endpoints as webhook_endpoints
from wallet.webhooks.secrets import SecretBox
from wallet.withdrawals import endpoints as withdrawals
from wallet.withdrawals.requesting import withdrawals_once
from wallet.withdrawals.service import NodeFeeQuoter, WithdrawalRules, fee_policy

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
    # The hot paths, authentication, transfers and withdrawals, batch the statements of concurrent
    # requests on plain autocommit connections (wallet.batching).
    settings = runtime.settings
    statements = statement_pool(
        runtime.engine, settings.database_pool_size, settings.database_timeout
    )
    key_lookups = Batcher("api-key-lookups", statements, find_active_keys)
    transfer_batches = Batcher(
        "transfers",
        statements,
        partial(transfers_once, catalogue=runtime.catalogue),
        apart=lambda transfer: (transfer.key.scope, transfer.key.key),
    )
    withdrawal_batches = Batcher(
        "withdrawals",
        statements,
        partial(withdrawals_once, catalogue=runtime.catalogue),
        apart=lambda withdrawal: (withdrawal.key.scope, withdrawal.key.key),
    )
    batchers = (key_lookups, transfer_batches, withdrawal_batches)
    fee_quoter = NodeFeeQuoter(fee_policy(settings), settings.withdrawal_fee_quote_max_age)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What exists once the app is built lives as long as the process: the garbage
        # collector's full passes skip it, rather than stall every request for ~40 ms.
        gc.freeze()
        statements.open()
        for batcher in batchers:
            batcher.start()
        try:
            yield
        finally:
            for batcher in batchers:
                batcher.stop()
            statements.close()
            fee_quoter.close()

    app = FastAPI(
        title="Hybrid wallet API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    app.state.runtime = runtime
    app.state.key_lookups = key_lookups
    app.state.transfer_batches = transfer_batches
    app.state.address_issuer = address_issuer(runtime.settings, runtime.catalogue)
    app.state.secret_box = SecretBox.from_settings(runtime.settings)
    app.state.bank = open_bank(runtime.settings)
    if app.state.bank is not None:
        app.state.payin_batches = payin_batches(runtime, app.state.bank)
    app.state.withdrawal_rules = WithdrawalRules.from_settings(runtime.settings)
    app.state.withdrawal_fees = fee_quoter
    app.state.withdrawal_batches = withdrawal_batches
    install_problem_handlers(app)
    install_openapi(app, runtime.catalogue)
    # Outermost first: the caller is known before the body is read, then the body is limited.
    app.add_middleware(BodyLimit, max_bytes=runtime.settings.api_max_body_bytes)
    app.add_middleware(AuthenticateFirst, key_lookups=key_lookups)
    routers = (
        wallets.router,
        transfers.router,
        deposits.router,
        withdrawals.router,
        assets.router,
        webhook_endpoints.router,
        health.router,
        bank_accounts.router,
        payins.router,
        payouts.router,
        banking.router,
    )
    for router in routers:
        app.include_router(router)
    return app


def payin_batches(runtime: Runtime, bank: BankProvider) -> OneBatchAtATime[KeyedPayin, MadePayin]:
    """The process's pay-in requests in batches, one call to the bank at a time."""
    settings = runtime.settings
    return OneBatchAtATime(
        partial(
            make_payins,
            runtime.sessions,
            bank,
            fees=FeeSchedule(settings.fiat_fees),
            catalogue=runtime.catalogue,
        ),
        max_batch=settings.payin_batch,
        max_wait=settings.payin_turn_wait,
        expired=lambda: BankUnavailable(
            "the pay-ins ahead of this one are still waiting for the bank; nothing was "
            "started: retry with the same Idempotency-Key"
        ),
    )
