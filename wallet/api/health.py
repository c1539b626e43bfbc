"""Liveness and readiness for load balancers and operators.

`/readyz` answers 200 whenever this API can serve (its database answers), even while a part
of the service is degraded: a halted chain stops that chain's deposits only, so a load
balancer must not take API replicas out for it. The body names each degraded part and why.
"""

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from wallet.api.dependencies import DbSession
from wallet.deposits.chain_states import halted_chains

router = APIRouter(tags=["health"])


class DegradedPart(BaseModel):
    part: str = Field(examples=["chain:devnet"], description="`chain:<name>` for a chain.")
    reason: str
    since: datetime


class Readiness(BaseModel):
    status: Literal["ok", "degraded"]
    degraded: list[DegradedPart]


@router.get("/healthz", name="live")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", name="ready")
def readyz(session: DbSession) -> Readiness:
    """Readiness: the database answers; `degraded` names the parts that do not work, and why."""
    degraded = [
        DegradedPart(part=f"chain:{state.chain}", reason=state.reason or "", since=state.since)
        for state in halted_chains(session)
    ]
    return Readiness(status="degraded" if degraded else "ok", degraded=degraded)
