"""Bearer API keys: who is calling (a `Principal` of one tenant) and what it may do."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from wallet.api.dependencies import KeyLookups
from wallet.apikeys.models import Scope
from wallet.apikeys.service import is_well_formed
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
    """The key named by the `Authorization` header; anything else is answered with 401."""
    if credentials is None:
        if "authorization" in request.headers:
            raise Unauthenticated("the Authorization header must be `Bearer <API key>`")
        raise Unauthenticated("send an API key: `Authorization: Bearer <API key>`")
    if not is_well_formed(credentials.credentials):
        raise Unauthenticated("the bearer token is not an API key of this service")
    key = await key_lookups.submit(credentials.credentials)
    if key is None:
        raise Unauthenticated("the API key is unknown or revoked")
    return Principal(tenant_id=key.tenant_id, key_id=key.id, scopes=key.scopes)


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
