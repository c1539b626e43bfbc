"""Schemathesis against the running server's OpenAPI document, with a key of every scope.

For generated requests, valid and invalid: no 5xx, each response matches the documented
status, content type and schema, and every error is a problem document.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import CheckContext
from schemathesis.config import SchemathesisConfig
from schemathesis.core.transport import Response
from sqlalchemy.orm import Session, sessionmaker

from tests.api_fixtures import ALL_SCOPES, issue_key
from tests.factories import Factory
from wallet.api.problems import PROBLEM_MEDIA_TYPE
from wallet.assets.service import Catalogue

# Business rules beyond the schema (an unknown asset, too many decimals, funds too low) answer
# schema-valid requests with 422 problems; that is an accepted answer here.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422"]
"""


@pytest.fixture(scope="session")
def api_schema(api_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(
        f"{api_url}/openapi.json", config=SchemathesisConfig.from_str(CONFIG)
    )


@pytest.fixture(scope="session")
def fuzzing_key(sessions: sessionmaker[Session], catalogue: Catalogue) -> str:
    """A key of every scope, for a tenant with a funded wallet."""
    factory = Factory(sessions, catalogue)
    factory.fund(factory.wallet(), "USD", 10**9)
    return issue_key(sessions, factory.tenant_id, *ALL_SCOPES)


def errors_are_problems(ctx: CheckContext, response: Response, case: Case) -> bool:
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type == PROBLEM_MEDIA_TYPE, f"error {response.status_code} is {content_type}"
        document = response.json()
        assert {"type", "title", "status", "detail"} <= document.keys(), document
        assert document["status"] == response.status_code
    return True


@pytest.fixture(autouse=True)
def node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis' lazy schemas still read `_nodeid`, which pytest 9 renamed."""
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_schema(case: Case, fuzzing_key: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzzing_key}"},
        additional_checks=[errors_are_problems],
    )
