"""Bearer API keys: who is calling (a `Principal` of one tenant) and what it may do."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette import types as asgi
from starlette.datastructures import Headers

from wallet.api.dependencies import KeyLookups
from wallet.api.problems import database_unavailable_response, problem_response
from wallet.apikeys.models import Scope
from wallet.apikeys.service import ActiveKey, is_well_formed
from wallet.batching import Batcher
from wallet.database import database_unavailable
from wallet.errors import WalletError

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    bearerFormat="wk_live_...",
    description="An API key made by `wallet keys create`: `Authorization: Bearer wk_live_...`.",
)


class Unauthenticated(WalletError):
    status_code = 401
    problem = "unauthenticated"
    title = "A valid API key is required"


UNAUTHENTICATED_HEADERS = {"WWW-Authenticate": "Bearer"}
# Where `AuthenticateFirst` leaves the caller for the `authenticate` dependency.
PRINCIPAL_STATE = "principal"


class MissingScope(WalletError):
    status_code = 403
    problem = "missing-scope"
    title = "The API key lacks the scope this operation needs"


@dataclass(frozen=True)
class Principal:
    """The caller: an API key of one tenant, and what it may do."""

    tenant_id: str
    key_id: str
    scopes: frozenset[Scope]


async def authenticate(
    request: Request,
    key_lookups: KeyLookups,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The key named by the `Authorization` header; anything else is answered with 401.

    A request with a body was authenticated before its body was read (`AuthenticateFirst`).
    """
    principal: Principal | None = getattr(request.state, PRINCIPAL_STATE, None)
    if principal is not None:
        return principal
    return await principal_of(request.headers.get("authorization"), key_lookups)


async def principal_of(
    authorization: str | None, key_lookups: Batcher[str, ActiveKey | None]
) -> Principal:
    """The caller named by an `Authorization` header's value; `Unauthenticated` otherwise."""
    if authorization is None:
        raise Unauthenticated("send an API key: `Authorization: Bearer <API key>`")
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        raise Unauthenticated("the Authorization header must be `Bearer <API key>`")
    if not is_well_formed(secret):
        raise Unauthenticated("the bearer token is not an API key of this service")
    key = await key_lookups.submit(secret)
    if key is None:
        raise Unauthenticated("the API key is unknown or revoked")
    return Principal(tenant_id=key.tenant_id, key_id=key.id, scopes=key.scopes)


SIGNED_WEBHOOKS_PREFIX = "/v1/fiat/webhooks/"


class AuthenticateFirst:
    """ASGI middleware: a request that carries a body to `prefix` is authenticated before any
    of its body is read, and an unauthenticated one answered 401 at once, its body unread."""

    def __init__(
        self, app: asgi.ASGIApp, key_lookups: Batcher[str, ActiveKey | None], prefix: str = "/v1/"
    ) -> None:
        self.app = app
        self.key_lookups = key_lookups
        self.prefix = prefix

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        path = scope.get("path", "")
        # A bank's webhooks carry a signature, not an API key: their route verifies it.
        if (
            scope["type"] != "http"
            or not path.startswith(self.prefix)
            or path.startswith(SIGNED_WEBHOOKS_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        try:
            principal = await principal_of(headers.get("authorization"), self.key_lookups)
        except Unauthenticated as error:
            # The connection is closed after the answer: the body is never read.
            closing = {**UNAUTHENTICATED_HEADERS, "Connection": "close"}
            response = problem_response(error.to_problem(), closing)
            await response(scope, receive, send)
            return
        except Exception as error:
            # Outside the app, its exception handlers cannot answer for it.
            if not database_unavailable(error):
                raise
            await database_unavailable_response()(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        await self.app(scope, receive, send)


def require_scope(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency giving the caller if its key has `scope`, answering 403 otherwise."""

    async def principal_with_scope(
        principal: Annotated[Principal, Depends(authenticate)],
    ) -> Principal:
        if scope not in principal.scopes:
            raise MissingScope(
                f"this operation needs the {scope.value!r} scope", required_scope=scope.value
            )
        return principal

    return principal_with_scope


Reader = Annotated[Principal, Depends(require_scope(Scope.READ))]
Transferer = Annotated[Principal, Depends(require_scope(Scope.TRANSFER))]
Withdrawer = Annotated[Principal, Depends(require_scope(Scope.WITHDRAW))]
Operator = Annotated[Principal, Depends(require_scope(Scope.OPERATOR))]
