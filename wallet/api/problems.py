"""Problem documents (RFC 9457, `application/problem+json`): their schema and responses."""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from wallet.errors import PROBLEM_BASE, DatabaseUnavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Where the bad value is: `body.amount`, `query.limit`, ...")
    message: str


class Problem(BaseModel):
    """An error: a stable `type` URI to branch on, a title, and a detail for people."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[PROBLEM_BASE + "insufficient-funds"])
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(
        default=None, description="For invalid requests: each offending field."
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring problem documents for these statuses."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def problem_response(
    problem: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        dict(problem),
        status_code=int(problem["status"]),
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def database_unavailable_response() -> JSONResponse:
    """503 with `Retry-After`: the database cannot be reached."""
    unavailable = DatabaseUnavailable("the database cannot be reached; try again shortly")
    return problem_response(
        unavailable.to_problem(), {"Retry-After": str(DatabaseUnavailable.retry_after)}
    )
