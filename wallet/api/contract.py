"""The OpenAPI document: operation ids, the catalogue's values, problem documents and links.

Generated clients name their methods from the operation ids (`wallets_create`); contract tests
and clients read the catalogue's chains and assets as enums, generated from the catalogue the
process runs with; links say which operation reads what another one created.
"""

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema

from wallet.api.problems import Problem, problem_responses
from wallet.assets.service import AssetKind, Catalogue
from wallet.errors import DatabaseUnavailable

CATALOGUE_MARKER = "x-catalogue"


def operation_id(route: APIRoute) -> str:
    """`<area>_<verb>`: the route's first tag (its area) and its name."""
    return f"{route.tags[0]}_{route.name}".replace("-", "_")


def link(
    operation: str, description: str, body: dict[str, str] | None = None, **parameters: str
) -> dict[str, Any]:
    """An OpenAPI link to `operation`, its parameters (and fields of its body) taken from this
    response by runtime expressions (`$response.body#/id`)."""
    found: dict[str, Any] = {"operationId": operation, "description": description}
    if parameters:
        found["parameters"] = parameters
    if body:
        found["requestBody"] = body
    return found


def install_openapi(app: FastAPI, catalogue: Catalogue) -> None:
    """Serve `app`'s document with the problem schema and the catalogue's values in it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _, definitions = models_json_schema(
                [(Problem, "serialization")], ref_template="#/components/schemas/{model}"
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(definitions["$defs"])
            values = {
                "assets": list(catalogue.assets),
                "chains": list(catalogue.chains),
                "fiat_assets": [
                    code for code, asset in catalogue.assets.items() if asset.kind is AssetKind.FIAT
                ],
            }
            for schema in _schemas(document):
                if CATALOGUE_MARKER in schema:
                    schema["enum"] = values[schema.pop(CATALOGUE_MARKER)]
            _document_database_unavailable(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_database_unavailable(document: dict[str, Any]) -> None:
    """Every operation that needs the database may answer 503 while it is away."""
    unavailable = problem_responses(DatabaseUnavailable.status_code)[503]
    unavailable["headers"] = {
        "Retry-After": {
            "description": "Seconds to wait before trying again (under the same key).",
            "schema": {"type": "integer"},
        }
    }
    for path, operations in document.get("paths", {}).items():
        if path == "/healthz":
            continue
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault("503", unavailable)


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in the document, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)
