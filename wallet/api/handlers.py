"""One renderer for every error: each becomes a problem document, documented in OpenAPI.

A business error (a `WalletError`) keeps its own status and stable type; request validation
errors list the offending fields; routing errors (404, 405) are problems too; a database that
cannot be reached is a 503 with `Retry-After`; any other exception becomes a generic 500 that
reveals nothing of the code or the database (the traceback goes to the server's log).
"""

import logging
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.routing import Match

from wallet.api.auth import UNAUTHENTICATED_HEADERS, Unauthenticated
from wallet.api.idempotent import IDEMPOTENCY_KEY_HEADER, IdempotencyKeyRequired
from wallet.api.problems import database_unavailable_response, problem_response
from wallet.database import database_unavailable
from wallet.errors import PROBLEM_BASE, InvalidRequest, WalletError

logger = logging.getLogger(__name__)

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error of `app` as a problem document (`wallet.api.contract` documents them)."""
    app.add_exception_handler(WalletError, _wallet_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for database_error in (psycopg.Error, sa_exc.DBAPIError, sa_exc.TimeoutError):
        app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _wallet_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, WalletError)
    headers = UNAUTHENTICATED_HEADERS if isinstance(error, Unauthenticated) else None
    return problem_response(error.to_problem(), headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    if any(_is_missing_idempotency_key(item) for item in error.errors()):
        missing = IdempotencyKeyRequired(f"send an {IDEMPOTENCY_KEY_HEADER} header")
        return problem_response(missing.to_problem())
    fields = [
        {"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
        for item in error.errors()
    ]
    detail = "; ".join(f"{item['field']}: {item['message']}" for item in fields)
    return problem_response(InvalidRequest(detail, errors=fields).to_problem())


def _is_missing_idempotency_key(item: dict[str, Any]) -> bool:
    return item["type"] == "missing" and tuple(item["loc"]) == ("header", IDEMPOTENCY_KEY_HEADER)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    status = HTTPStatus(error.status_code)
    problem = {
        "type": PROBLEM_BASE + status.phrase.lower().replace(" ", "-").replace("'", ""),
        "title": status.phrase,
        "status": status.value,
        "detail": str(error.detail),
    }
    headers = dict(error.headers or {})
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(problem, headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the path answers; Starlette names only those of the first route found."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    if not database_unavailable(error):
        logger.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return await _unexpected_error(request, error)
    logger.warning(
        "%s %s: the database is unavailable: %s", request.method, request.url.path, error
    )
    return database_unavailable_response()


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    problem = {
        "type": PROBLEM_BASE + "internal-error",
        "title": "Internal server error",
        "status": 500,
        "detail": "The request failed on our side; it has been logged.",
    }
    return problem_response(problem)
