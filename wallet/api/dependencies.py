"""Per-request dependencies: the runtime's parts and the request's unit of work."""

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar, cast

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from fiat import BankProvider
from wallet.apikeys.service import ActiveKey
from wallet.assets.service import Catalogue
from wallet.banking.errors import BankNotConfigured
from wallet.batching import Batcher, OneBatchAtATime
from wallet.database import retrying
from wallet.errors import InvalidRequest, WalletError
from wallet.idempotency.service import Outcome
from wallet.payins.service import KeyedPayin, MadePayin
from wallet.runtime import Runtime
from wallet.transfers.service import KeyedTransfer

T = TypeVar("T")


def runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


async def current_runtime(request: Request) -> Runtime:
    return runtime(request)


async def catalogue(request: Request) -> Catalogue:
    return runtime(request).catalogue


def unit_of_work(request: Request) -> Iterator[Session]:
    """The request's one database transaction, committed at the edge once the route succeeds.

    If the route raises, the transaction is rolled back when the session closes; services
    and routes never commit.
    """
    with runtime(request).sessions() as session:
        yield session
        session.commit()


async def key_lookups(request: Request) -> Batcher[str, ActiveKey | None]:
    return cast(Batcher[str, ActiveKey | None], request.app.state.key_lookups)


async def transfer_batches(request: Request) -> Batcher[KeyedTransfer, Outcome | WalletError]:
    return cast(Batcher[KeyedTransfer, Outcome | WalletError], request.app.state.transfer_batches)


async def bank(request: Request) -> BankProvider:
    return bank_of(request)


def bank_of(request: Request) -> BankProvider:
    """The process's bank provider (`wallet.banking.service.open_bank`), if one is configured."""
    provider = cast(BankProvider | None, request.app.state.bank)
    if provider is None:
        raise BankNotConfigured("set WALLET_BANK_WEBHOOK_SECRET (and the bank's URL and key)")
    return provider


async def payin_batches(request: Request) -> OneBatchAtATime[KeyedPayin, MadePayin]:
    """The process's pay-in requests, taken to the bank in batches (`make_payins`)."""
    bank_of(request)  # none configured: 503
    return cast(OneBatchAtATime[KeyedPayin, MadePayin], request.app.state.payin_batches)


# Scope "function": the commit happens before the response is sent, so a client that has
# its answer can read what the request wrote, and a failed commit is answered as a failure.
DbSession = Annotated[Session, Depends(unit_of_work, scope="function")]
KeyLookups = Annotated[Batcher[str, ActiveKey | None], Depends(key_lookups)]
TransferBatches = Annotated[
    Batcher[KeyedTransfer, Outcome | WalletError], Depends(transfer_batches)
]
CatalogueDep = Annotated[Catalogue, Depends(catalogue)]
RuntimeDep = Annotated[Runtime, Depends(current_runtime)]
BankDep = Annotated[BankProvider, Depends(bank)]
PayinBatches = Annotated[OneBatchAtATime[KeyedPayin, MadePayin], Depends(payin_batches)]


async def known_query_parameters(request: Request) -> None:
    """Refuse query parameters the route does not declare, and any given more than once: a
    misspelt filter must fail, not silently widen a list to everything; each is one value."""
    unknown = sorted(set(request.query_params) - _declared_query_parameters(request.scope["route"]))
    if unknown:
        raise InvalidRequest(
            "unknown query parameters: " + ", ".join(repr(name) for name in unknown),
            errors=[{"field": f"query.{name}", "message": "unknown parameter"} for name in unknown],
        )
    counts = Counter(name for name, _ in request.query_params.multi_items())
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise InvalidRequest(
            "query parameters given more than once: " + ", ".join(map(repr, repeated)),
            errors=[
                {"field": f"query.{name}", "message": "given more than once"} for name in repeated
            ],
        )


def _declared_query_parameters(route: APIRoute) -> frozenset[str]:
    return frozenset(_query_parameters(route.dependant))


def _query_parameters(dependant: Dependant) -> Iterator[str]:
    yield from (param.alias for param in dependant.query_params)
    for dependency in dependant.dependencies:
        yield from _query_parameters(dependency)


def retry_lost_races(session: Session, work: Callable[[], T]) -> T:
    """Run `work` in the request's transaction, again in a fresh one if it lost a race.

    A deadlock or serialization failure aborts the whole transaction, so the retry starts
    over: call this for all of a request's writes, with nothing before it worth keeping.
    """
    return retrying(work, before_retry=session.rollback)
