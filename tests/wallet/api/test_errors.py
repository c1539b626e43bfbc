"""Errors are problem documents, and the OpenAPI document says so."""

from tests.api_fixtures import Api, ApiTenant
from tests.api_helpers import assert_problem


def test_routing_errors_are_problems(api: Api) -> None:
    with api.client() as client:
        assert_problem(client.get("/v1/nothing-here"), 404, "not-found")
        not_allowed = client.put("/v1/wallets")
    assert_problem(not_allowed, 405, "method-not-allowed")
    assert set(not_allowed.headers["allow"].split(", ")) == {"GET", "POST"}


def test_a_body_that_is_not_json_is_an_invalid_request(tenant: ApiTenant) -> None:
    response = tenant.client.post(
        "/v1/wallets", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(response, 422, "invalid-request")
    assert problem["errors"][0]["field"].startswith("body")


def test_openapi_documents_problems_and_the_key(api: Api) -> None:
    with api.client() as client:
        document = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert "Problem" in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    create_transfer = document["paths"]["/v1/transfers"]["post"]
    for status in ("400", "401", "403", "404", "409", "422", "503"):
        assert "application/problem+json" in create_transfer["responses"][status]["content"]
    assert "Retry-After" in create_transfer["responses"]["503"]["headers"]
    assert "503" in document["paths"]["/readyz"]["get"]["responses"]
    assert "503" not in document["paths"]["/healthz"]["get"]["responses"]
    header = next(p for p in create_transfer["parameters"] if p["name"] == "Idempotency-Key")
    assert header["required"] is True
    assert docs.status_code == 200


def test_an_unknown_query_parameter_is_refused(tenant: ApiTenant) -> None:
    tenant.factory.wallet("someone")
    misspelt = tenant.client.get("/v1/wallets", params={"owner": "nobody"})
    problem = assert_problem(misspelt, 422, "invalid-request")
    assert problem["errors"] == [{"field": "query.owner", "message": "unknown parameter"}]
