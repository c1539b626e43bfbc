"""The sandbox bank's HTTP API: the provider API under `/v1`, driving endpoints under `/sandbox`.

Everything runs on the event loop's one thread, SQLite calls included, so requests and the
background steps (scheduled status changes, webhook delivery) never interleave mid-write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from functools import partial
from typing import Annotated, Any

import aiohttp
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fiat.model import PayinStatus, PaymentKind, PayoutStatus
from fiat.provider import MAX_PAYINS_PER_CALL
from fiat.sandbox.bank import Refused, SandboxBank
from fiat.sandbox.delivery import WebhookSender
from fiat.sandbox.settings import Options, Outage, Switches
from fiat.sandbox.store import open_store
from fiat.wire import encode_bank_account, encode_payment, encode_report

log = logging.getLogger(__name__)

IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=255)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BankAccountIn(_Strict):
    holder_name: str = Field(min_length=1, max_length=200)
    account_number: str = Field(pattern=r"^[A-Z0-9]{4,34}$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    country: str = Field(pattern=r"^[A-Z]{2}$")


class PaymentIn(_Strict):
    bank_account: str = Field(min_length=1, max_length=100)
    amount: StrictInt
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class BatchedPayinIn(PaymentIn):
    idempotency_key: str = Field(min_length=1, max_length=255)


class PayinBatchIn(_Strict):
    payins: list[BatchedPayinIn] = Field(min_length=1, max_length=MAX_PAYINS_PER_CALL)


class AmendIn(_Strict):
    amount: StrictInt | None = None
    status: PayinStatus | PayoutStatus | None = None


class SwitchesIn(_Strict):
    outage: Outage | None = None
    outage_delay: float | None = Field(default=None, ge=0)
    webhook_url: str | None = None
    duplicate_webhooks: bool | None = None
    reverse_webhooks: bool | None = None
    webhook_hold: float | None = Field(default=None, ge=0)
    webhook_batch: int | None = Field(default=None, ge=1, le=1000)


def _error(code: str, message: str, status_code: int) -> JSONResponse:
    return JSONResponse(Refused(code, message, status_code).body(), status_code=status_code)


def create_app(options: Options, clock: Callable[[], float] = time.time) -> FastAPI:
    """The sandbox bank as an ASGI app; its database opens when the app starts."""
    switches = Switches(webhook_url=options.webhook_url, webhook_batch=options.webhook_batch)
    state: dict[str, Any] = {}

    def bank() -> SandboxBank:
        return state["bank"]  # type: ignore[no-any-return]

    async def every(tick: float, step: Callable[[], Awaitable[object]]) -> None:
        while True:
            try:
                await step()
            except Exception:
                log.exception("sandbox bank background step failed")
            await asyncio.sleep(tick)

    async def advance() -> int:
        return bank().advance()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        db = open_store(options.data_path)
        state["bank"] = SandboxBank(db, options.timings, clock)
        async with aiohttp.ClientSession() as http:
            sender = WebhookSender(db, options, switches, http, clock)
            tasks = [
                asyncio.create_task(every(options.tick, advance)),
                asyncio.create_task(every(options.tick, sender.deliver_due)),
            ]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await sender.stop()
                db.close()

    app = FastAPI(title="Sandbox bank", lifespan=lifespan)

    @app.exception_handler(Refused)
    async def refused(_: Request, refusal: Refused) -> JSONResponse:
        return JSONResponse(refusal.body(), status_code=refusal.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in error.errors())
        return _error("invalid_request", f"invalid fields: {fields}", 400)

    app.add_middleware(OutageSwitch, switches=switches)
    app.include_router(_provider_api(options, bank))
    app.include_router(_sandbox_api(options, bank, switches))
    return app


class OutageSwitch:
    """Answers the provider API (`/v1/...`) as the outage switch says: `unavailable` 503 at
    once, `timeout` 504 after `outage_delay`; `error_after` (502) and `timeout_after` (504,
    after the delay) do the work and lose only the answer."""

    def __init__(self, app: ASGIApp, switches: Switches) -> None:
        self.app = app
        self.switches = switches

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mode = self.switches.outage
        if mode is Outage.NONE or scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if mode is Outage.UNAVAILABLE:
            answer = _error("unavailable", "the bank is down", 503)
        elif mode is Outage.TIMEOUT:
            await asyncio.sleep(self.switches.outage_delay)
            answer = _error("timeout", "the bank did not answer", 504)
        else:
            await self.app(scope, receive, _lost)
            if mode is Outage.TIMEOUT_AFTER:
                await asyncio.sleep(self.switches.outage_delay)
                answer = _error("timeout", "the bank did not answer", 504)
            else:
                answer = _error("bad_gateway", "the bank's gateway failed", 502)
        await answer(scope, receive, send)


async def _lost(_: Message) -> None:
    """Where an answer the outage loses goes."""


def _authenticated(options: Options) -> Any:
    """A dependency refusing requests without one of the bank's API keys."""

    async def authenticated(authorization: Annotated[str, Header()] = "") -> None:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or secret not in options.api_keys:
            raise Refused("unauthorized", "a valid API key is required", 401)

    return Depends(authenticated)


def _provider_api(options: Options, bank: Callable[[], SandboxBank]) -> APIRouter:
    """What a bank or payment provider offers its merchants."""
    router = APIRouter()
    v1 = [_authenticated(options)]

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.post("/v1/bank_accounts", dependencies=v1)
    async def link(body: BankAccountIn, key: IdempotencyKey) -> JSONResponse:
        status_code, answer = bank().once(
            "bank_accounts", key, body.model_dump(), lambda: bank().link(**body.model_dump())
        )
        return JSONResponse(answer, status_code=status_code)

    @router.get("/v1/bank_accounts/{token}", dependencies=v1)
    async def bank_account(token: str) -> dict[str, Any]:
        return encode_bank_account(bank().bank_account(token))

    def create(kind: PaymentKind, body: PaymentIn, key: IdempotencyKey) -> JSONResponse:
        status_code, answer = bank().once(
            kind,
            key,
            body.model_dump(),
            lambda: bank().create(kind, key, body.bank_account, body.amount, body.currency),
        )
        return JSONResponse(answer, status_code=status_code)

    def find(kind: PaymentKind, idempotency_key: str) -> dict[str, Any]:
        payment = bank().find(kind, idempotency_key)
        return {"data": [] if payment is None else [encode_payment(payment)]}

    def get(kind: PaymentKind, payment_id: str) -> dict[str, Any]:
        payment = bank().get(payment_id)
        if encode_payment(payment)["object"] != kind:
            raise Refused("not_found", "no such payment", 404)
        return encode_payment(payment)

    @router.post("/v1/payin_batches", dependencies=v1)
    async def create_payins(body: PayinBatchIn) -> dict[str, Any]:
        """Pay-ins, each under its own idempotency key, in one transaction: one answer per
        pay-in, in order, the pay-in or its refusal (`{"error": ...}`)."""
        calls = [
            (
                payin.idempotency_key,
                payin.model_dump(exclude={"idempotency_key"}),
                partial(
                    bank().create,
                    PaymentKind.PAYIN,
                    payin.idempotency_key,
                    payin.bank_account,
                    payin.amount,
                    payin.currency,
                ),
            )
            for payin in body.payins
        ]
        return {"data": [answer for _, answer in bank().once_each(PaymentKind.PAYIN, calls)]}

    @router.post("/v1/payouts", dependencies=v1)
    async def create_payout(body: PaymentIn, key: IdempotencyKey) -> JSONResponse:
        return create(PaymentKind.PAYOUT, body, key)

    @router.get("/v1/payins", dependencies=v1)
    async def find_payin(idempotency_key: str) -> dict[str, Any]:
        return find(PaymentKind.PAYIN, idempotency_key)

    @router.get("/v1/payouts", dependencies=v1)
    async def find_payout(idempotency_key: str) -> dict[str, Any]:
        return find(PaymentKind.PAYOUT, idempotency_key)

    @router.get("/v1/payins/{payment_id}", dependencies=v1)
    async def get_payin(payment_id: str) -> dict[str, Any]:
        return get(PaymentKind.PAYIN, payment_id)

    @router.get("/v1/payouts/{payment_id}", dependencies=v1)
    async def get_payout(payment_id: str) -> dict[str, Any]:
        return get(PaymentKind.PAYOUT, payment_id)

    @router.get("/v1/reports/balances", dependencies=v1)
    async def reports() -> dict[str, Any]:
        return {"data": [encode_report(report) for report in bank().reports()]}

    return router


def _sandbox_api(
    options: Options, bank: Callable[[], SandboxBank], switches: Switches
) -> APIRouter:
    """What only a sandbox offers: driving payments, outages and webhook delivery."""
    router = APIRouter()
    v1 = [_authenticated(options)]

    @router.post("/sandbox/payins/{payment_id}/pay", dependencies=v1)
    async def pay(payment_id: str) -> dict[str, Any]:
        return encode_payment(bank().pay(payment_id))

    @router.patch("/sandbox/payments/{payment_id}", dependencies=v1)
    async def amend(payment_id: str, body: AmendIn) -> dict[str, Any]:
        return encode_payment(bank().amend(payment_id, body.amount, body.status))

    @router.get("/sandbox/settings", dependencies=v1)
    async def read_switches() -> dict[str, Any]:
        return asdict(switches)

    @router.patch("/sandbox/settings", dependencies=v1)
    async def change_switches(body: SwitchesIn) -> dict[str, Any]:
        for name, value in body.model_dump(exclude_unset=True).items():
            setattr(switches, name, value)
        return asdict(switches)

    @router.get("/sandbox/events", dependencies=v1)
    async def events() -> dict[str, Any]:
        rows = bank().db.execute(
            "SELECT id, type, payment_id, json_extract(body, '$.created_at') AS created_at,"
            " attempts, delivered_at, next_attempt_at, last_error FROM events ORDER BY seq"
        )
        return {"data": [dict(row) for row in rows]}

    return router
