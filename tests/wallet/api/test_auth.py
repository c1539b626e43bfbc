"""Bearer API keys: missing, malformed, unknown and revoked keys; scopes; the CLI."""

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.api_fixtures import Api, ApiTenant
from tests.api_helpers import assert_problem, idempotency_key, transfer_body
from wallet.apikeys.models import Scope
from wallet.apikeys.service import SECRET_PREFIX, create_key, revoke_key
from wallet.database import unit_of_work


def test_a_request_without_a_key_is_unauthenticated(api: Api) -> None:
    with api.client() as client:
        response = client.get("/v1/assets")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-key",
        f"Bearer {SECRET_PREFIX}short",
        f"Bearer {SECRET_PREFIX}{'A' * 52}",
        "wk_live_without_scheme",
    ],
)
def test_a_malformed_key_is_unauthenticated(api: Api, authorization: str) -> None:
    with api.client() as client:
        response = client.get("/v1/assets", headers={"Authorization": authorization})
    assert_problem(response, 401, "unauthenticated")


def test_an_unknown_key_is_unauthenticated(api: Api) -> None:
    with api.client(SECRET_PREFIX + "a" * 52) as client:
        assert_problem(client.get("/v1/assets"), 401, "unauthenticated")


def test_a_revoked_key_is_unauthenticated(
    tenant: ApiTenant, sessions: sessionmaker[Session]
) -> None:
    with unit_of_work(sessions) as session:
        issued = create_key(session, tenant.tenant_id, [Scope.READ])
    with tenant.api.client(issued.secret) as client:
        assert client.get("/v1/assets").status_code == 200
        with unit_of_work(sessions) as session:
            revoke_key(session, issued.key.id)
        assert_problem(client.get("/v1/assets"), 401, "unauthenticated")


def test_each_operation_needs_its_scope(tenant: ApiTenant) -> None:
    wallet = tenant.factory.wallet()
    with tenant.client_with(Scope.READ) as reader:
        assert reader.get(f"/v1/wallets/{wallet}").status_code == 200
        body = transfer_body(wallet, tenant.factory.wallet(), "1.00")
        denied = reader.post("/v1/transfers", json=body, headers=idempotency_key())
        assert assert_problem(denied, 403, "missing-scope")["required_scope"] == "transfer"
        assert_problem(reader.post(f"/v1/wallets/{wallet}/freeze"), 403, "missing-scope")
        assert_problem(reader.post("/v1/wallets", json={"owner_ref": "u"}), 403, "missing-scope")
    with tenant.client_with(Scope.TRANSFER, Scope.WITHDRAW) as writer:
        assert_problem(writer.get(f"/v1/wallets/{wallet}"), 403, "missing-scope")
        assert_problem(writer.post(f"/v1/wallets/{wallet}/unfreeze"), 403, "missing-scope")
    with tenant.client_with(Scope.OPERATOR) as operator:
        assert operator.post(f"/v1/wallets/{wallet}/freeze").json()["status"] == "frozen"


def test_keys_are_made_listed_and_revoked_with_the_cli(api: Api, database_url: str) -> None:
    wallet_command = str(Path(sys.executable).with_name("wallet"))
    env = {"WALLET_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> str:
        done = subprocess.run(
            [wallet_command, "keys", *args], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout

    created = dict(
        line.split(maxsplit=1)
        for line in run(
            "create", "--tenant", "cli-tenant", "--scopes", "read,transfer", "--label", "app"
        ).splitlines()
    )
    assert created["secret"].startswith(SECRET_PREFIX)
    assert created["scopes"] == "read,transfer"
    with api.client(created["secret"]) as client:
        assert client.get("/v1/assets").status_code == 200
        listed = run("list", "--tenant", "cli-tenant")
        assert created["key"] in listed and "active" in listed
        assert created["secret"] not in listed
        run("revoke", created["key"])
        assert "revoked" in run("list", "--tenant", "cli-tenant")
        assert_problem(client.get("/v1/assets"), 401, "unauthenticated")
