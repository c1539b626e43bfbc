"""Per-request dependencies: the runtime's parts and the request's unit of work."""

import random
import time
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar, cast

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from wallet.assets import Catalogue
from wallet.database import RETRYABLE_SQLSTATES, sqlstate
from wallet.errors import InvalidRequest
from wallet.runtime import Runtime

T = TypeVar("T")


def runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


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


# Scope "function": the commit happens before the response is sent, so a client that has
# its answer can read what the request wrote, and a failed commit is answered as a failure.
DbSession = Annotated[Session, Depends(unit_of_work, scope="function")]
CatalogueDep = Annotated[Catalogue, Depends(catalogue)]


async def known_query_parameters(request: Request) -> None:
    """Refuse query parameters the route does not declare: a misspelt filter must fail, not
    silently widen a list to everything."""
    unknown = sorted(set(request.query_params) - _declared_query_parameters(request.scope["route"]))
    if unknown:
        raise InvalidRequest(
            "unknown query parameters: " + ", ".join(repr(name) for name in unknown),
            errors=[{"field": f"query.{name}", "message": "unknown parameter"} for name in unknown],
        )


def _declared_query_parameters(route: APIRoute) -> frozenset[str]:
    return frozenset(_query_parameters(route.dependant))


def _query_parameters(dependant: Dependant) -> Iterator[str]:
    yield from (param.alias for param in dependant.query_params)
    for dependency in dependant.dependencies:
        yield from _query_parameters(dependency)


def retry_lost_races(session: Session, work: Callable[[], T], attempts: int = 8) -> T:
    """Run `work` in the request's transaction, again in a fresh one if it lost a race.

    A deadlock or serialization failure aborts the whole transaction, so the retry starts
    over: call this for all of a request's writes, with nothing before it worth keeping.
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as error:
            if attempt == attempts or sqlstate(error) not in RETRYABLE_SQLSTATES:
                raise
            session.rollback()
            time.sleep(random.uniform(0, 0.002 * 2**attempt))  # noqa: S311 - jitter, not crypto
    raise AssertionError("unreachable")
