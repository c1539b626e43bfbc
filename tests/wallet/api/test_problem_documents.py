"""Every problem type speaks the client's terms: amounts in the asset's unit, no internal ids.

The test walks every `WalletError` subclass (and the problems the HTTP kit renders itself),
provokes each one it can through the API, and checks the document: amounts are decimal
strings in their asset's unit beside the asset code, ids are public prefixed ids, and nothing
of the ledger or the database shows (account or transaction numbers, minor units, SQL). The
types the API cannot produce are built as the code builds them and checked the same way.
"""

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import wallet.api.app
import wallet.cli  # noqa: F401 - and the command line's
from tests.api_fixtures import ApiTenant
from tests.api_helpers import idempotency_key, post_transfer, transfer_body
from wallet.apikeys.models import Scope
from wallet.assets.service import Catalogue
from wallet.errors import PROBLEM_BASE, Conflict, WalletError
from wallet.ledger.errors import ErrorCode, error_from_outcome

Provoke = Callable[[ApiTenant], httpx.Response]

# Keys holding an amount; a document with one names its asset in `asset`.
AMOUNT_KEYS = {"amount", "available", "balance", "posted", "pending_in", "pending_out"}
PUBLIC_ID = re.compile(r"^[a-z]+_[A-Za-z0-9]+$")
INTERNALS = re.compile(
    r"\b(select|insert|update|jsonb|psycopg|sqlalchemy|ledger_\w+|transfer_\w+|"
    r"account \d+|transaction \d+|traceback|minor units)\b",
    re.IGNORECASE,
)


def _funded_wallet(tenant: ApiTenant, cents: int) -> str:
    wallet = tenant.factory.wallet("payer")
    tenant.factory.fund(wallet, "USD", cents)
    return wallet


def _insufficient_funds(tenant: ApiTenant) -> httpx.Response:
    source = _funded_wallet(tenant, 9999)
    body = transfer_body(source, tenant.factory.wallet("payee"), "100.00")
    return post_transfer(tenant.client, body)


def _wallet_not_active(tenant: ApiTenant) -> httpx.Response:
    source = _funded_wallet(tenant, 100)
    tenant.client.post(f"/v1/wallets/{source}/freeze").raise_for_status()
    return post_transfer(tenant.client, transfer_body(source, tenant.factory.wallet(), "0.01"))


def _amount(text: str) -> Provoke:
    def provoke(tenant: ApiTenant) -> httpx.Response:
        body = transfer_body(tenant.factory.wallet(), tenant.factory.wallet(), text)
        return post_transfer(tenant.client, body)

    return provoke


def _idempotency_conflict(tenant: ApiTenant) -> httpx.Response:
    key = idempotency_key()
    tenant.client.post("/v1/wallets", json={"owner_ref": "a"}, headers=key).raise_for_status()
    return tenant.client.post("/v1/wallets", json={"owner_ref": "b"}, headers=key)


def _missing_scope(tenant: ApiTenant) -> httpx.Response:
    with tenant.client_with(Scope.READ) as reader:
        return reader.post("/v1/wallets", json={"owner_ref": "x"})


def _unauthenticated(tenant: ApiTenant) -> httpx.Response:
    with tenant.api.client() as anonymous:
        return anonymous.get("/v1/wallets")


def _webhook_endpoint(tenant: ApiTenant) -> str:
    body = {"url": "https://example.com/hooks", "event_types": ["transfer.created"]}
    created = tenant.client.post("/v1/webhook-endpoints", json=body)
    created.raise_for_status()
    return str(created.json()["id"])


# The random part of a well-formed id (`wallet.ids.new_id`) that names nothing.
UNKNOWN = "a" * 26


def _bank_account(tenant: ApiTenant, wallet: str, currency: str) -> str:
    details = {"holder_name": "Alice", "account_number": "12345678", "country": "US"}
    body = {"wallet_id": wallet, "currency": currency, **details}
    linked = tenant.client.post("/v1/bank-accounts", json=body)
    linked.raise_for_status()
    return str(linked.json()["id"])


def _payin(amount: str, account_currency: str) -> Provoke:
    def provoke(tenant: ApiTenant) -> httpx.Response:
        wallet = tenant.factory.wallet()
        account = _bank_account(tenant, wallet, account_currency)
        body = {"wallet_id": wallet, "bank_account_id": account, "asset": "USD", "amount": amount}
        return tenant.client.post("/v1/payins", json=body, headers=idempotency_key())

    return provoke


PROVOKED: dict[str, Provoke] = {
    "amount-below-fee": _payin("0.10", "USD"),
    "bank-account-mismatch": _payin("10.00", "EUR"),
    "bank-account-refused": lambda t: t.client.post(
        "/v1/bank-accounts", json={"wallet_id": t.factory.wallet(), "token": "no-such-token"}
    ),
    "unknown-bank-account": lambda t: t.client.get(f"/v1/bank-accounts/bac_{UNKNOWN}"),
    "unknown-payin": lambda t: t.client.get(f"/v1/payins/pin_{UNKNOWN}"),
    "unknown-payout": lambda t: t.client.get(f"/v1/payouts/pot_{UNKNOWN}"),
    "unknown-bank-provider": lambda t: t.client.post("/v1/fiat/webhooks/nobank", content=b"{}"),
    "unsupported-currency": lambda t: t.client.get(
        "/v1/fiat/fees", params={"rail": "payin", "asset": "USDC", "amount": "1.00"}
    ),
    "invalid-request": lambda t: t.client.post(
        "/v1/wallets", content=b"{", headers={"Content-Type": "application/json"}
    ),
    "not-found": lambda t: t.client.get("/v1/nothing-here"),
    "method-not-allowed": lambda t: t.client.put("/v1/wallets"),
    "unauthenticated": _unauthenticated,
    "missing-scope": _missing_scope,
    "idempotency-key-required": lambda t: t.client.post("/v1/transfers", json={}),
    "idempotency-key-reused": _idempotency_conflict,
    "insufficient-funds": _insufficient_funds,
    "wallet-not-active": _wallet_not_active,
    "unknown-wallet": lambda t: t.client.get(f"/v1/wallets/wal_{UNKNOWN}"),
    "unknown-asset": lambda t: post_transfer(
        t.client, {**transfer_body(t.factory.wallet(), t.factory.wallet(), "1"), "asset": "XYZ"}
    ),
    "unknown-chain": lambda t: t.client.post(
        f"/v1/wallets/{t.factory.wallet()}/deposit-addresses", json={"chain": "nochain"}
    ),
    "invalid-amount": _amount("1e5"),
    "too-many-decimals": _amount("1.001"),
    "amount-not-positive": _amount("0.00"),
    "amount-too-large": _amount("9" * 100),
    "same-source-and-destination": lambda t: post_transfer(
        t.client, transfer_body(wallet := t.factory.wallet(), wallet, "1.00")
    ),
    "unknown-transfer": lambda t: t.client.get("/v1/transfers/trf_999999999"),
    "unknown-deposit": lambda t: t.client.get(f"/v1/deposits/dep_{UNKNOWN}"),
    "invalid-webhook-url": lambda t: t.client.post(
        "/v1/webhook-endpoints",
        json={"url": "ftp://example.com", "event_types": ["transfer.created"]},
    ),
    "unknown-event-types": lambda t: t.client.post(
        "/v1/webhook-endpoints", json={"url": "https://example.com", "event_types": ["nope.x"]}
    ),
    "unknown-webhook-endpoint": lambda t: t.client.get(f"/v1/webhook-endpoints/whe_{UNKNOWN}"),
    "body-too-large": lambda t: t.client.post(
        "/v1/wallets", content=b" " * 1024 * 1024, headers={"Content-Type": "application/json"}
    ),
}

# What the API never answers, built as the code builds it. The ledger's refusals come from
# its SQL functions, whose failures carry account ids and minor units. (The wallet's, the
# rolling limit's and the bank account's are rendered by the areas that ask, in their own terms.)
_ACCOUNT_FAILURE = {"ok": False, "account_id": 7, "available": "9999"}
_LEDGER_REFUSALS = set(ErrorCode) - {
    ErrorCode.UNKNOWN_WALLET,
    ErrorCode.WALLET_NOT_ACTIVE,
    ErrorCode.DAILY_LIMIT_EXCEEDED,
    ErrorCode.UNKNOWN_BANK_ACCOUNT,
    ErrorCode.BANK_ACCOUNT_MISMATCH,
}
BUILT: dict[str, WalletError] = {
    "bad-request": WalletError("the base of every business error"),
    "conflict": Conflict("the base of conflicts"),
}
for _code in _LEDGER_REFUSALS:
    _error = error_from_outcome({**_ACCOUNT_FAILURE, "error": _code})
    BUILT[_error.problem] = _error


# Errors of the CLI and the ledger's own lookups: no request reaches them.
OUT_OF_REACH = {
    "unknown-api-key": "raised by `wallet keys revoke`, a command-line error",
    "no-scopes": "raised by `wallet keys create`, a command-line error",
    "unknown-transaction": "the ledger's own lookup; transfers answer unknown-transfer",
    "unknown-account": "the ledger's own lookup by account id",
    "deposit-addresses-unavailable": "needs a process started without deposit keys",
    "unknown-webhook-delivery": "no route looks deliveries up by id",
    "invalid-delivery-page": "the schema bounds the page size before the service sees it",
    "invalid-address": "the schema's address pattern refuses it first (invalid-request)",
    "bank-not-configured": "needs a process started without the bank's webhook secret",
    "bank-unavailable": "needs the bank to fail while an account is linked; its detail is fixed",
}

# Provoked through the API, one by one, by the tests named; they need a chain or a database
# outage, which this module's API has not.
PROVOKED_ELSEWHERE = {
    "service-unavailable": "tests/wallet/test_database_outage.py",
    "wallet-in-debt": "tests/wallet/payins/test_service.py",
    "webhook-refused": "tests/wallet/payins/test_sandbox_flows.py",
    "webhook-destination-not-allowed": "tests/wallet/webhooks/test_egress.py",
    **dict.fromkeys(
        (
            "address-checksum-mismatch",
            "already-approved",
            "asset-not-on-chain",
            "blocked-address",
            "daily-withdrawal-limit-exceeded",
            "destination-is-own-wallet",
            "fee-quote-unavailable",
            "requester-cannot-approve",
            "unknown-withdrawal",
            "withdrawal-fee-rate-missing",
            "withdrawal-limit-exceeded",
            "withdrawal-not-awaiting-approval",
            "withdrawal-not-cancellable",
            "zero-address",
        ),
        "tests/wallet/withdrawals/test_endpoints.py",
    ),
}


def _problem_types() -> set[str]:
    found: set[str] = set()
    pending: list[type[WalletError]] = [WalletError]
    while pending:
        cls = pending.pop()
        found.add(cls.problem)
        pending.extend(cls.__subclasses__())
    return found


def test_every_problem_type_is_covered() -> None:
    # The HTTP kit's own problems (routing) are provoked beside the business errors.
    routing = {"not-found", "method-not-allowed"}
    covered = PROVOKED.keys() | BUILT.keys() | OUT_OF_REACH.keys() | PROVOKED_ELSEWHERE.keys()
    assert _problem_types() | routing == covered


@pytest.mark.parametrize("slug", sorted(PROVOKED))
def test_a_problem_answered_by_the_api_is_in_the_clients_terms(
    slug: str, tenant: ApiTenant, catalogue: Catalogue
) -> None:
    response = PROVOKED[slug](tenant)
    assert response.headers["content-type"] == "application/problem+json", response.text
    document = response.json()
    assert document["type"] == PROBLEM_BASE + slug, document
    assert document["status"] == response.status_code
    _assert_clients_terms(document, catalogue)


@pytest.mark.parametrize("slug", sorted(BUILT))
def test_a_ledger_refusal_keeps_the_ledgers_internals_out(slug: str, catalogue: Catalogue) -> None:
    document = BUILT[slug].to_problem()
    assert document["type"] == PROBLEM_BASE + slug
    _assert_clients_terms(document, catalogue)
    assert "9999" not in str(document)


def test_insufficient_funds_says_what_is_available_in_the_assets_unit(
    tenant: ApiTenant,
) -> None:
    document = _insufficient_funds(tenant).json()
    assert document["asset"] == "USD"
    assert document["available"] == "99.99"
    assert document["wallet_id"].startswith("wal_")
    assert "99.99 USD" in document["detail"]
    # A retry under the same key replays the refusal in the same terms.
    source = _funded_wallet(tenant, 9999)
    body = transfer_body(source, tenant.factory.wallet("payee"), "100.00")
    key = "same-key"
    first = post_transfer(tenant.client, body, key)
    replay = post_transfer(tenant.client, body, key)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert replay.json()["available"] == "99.99"


def _assert_clients_terms(document: dict[str, Any], catalogue: Catalogue) -> None:
    for key, value in _items(document):
        if key == "status":
            assert isinstance(value, int)
            continue
        assert not isinstance(value, int | float), f"{key}: a bare number {value!r}"
        assert "account" not in key and "transaction_id" not in key, f"internal field {key}"
        if key.endswith("_id"):
            assert PUBLIC_ID.fullmatch(str(value)), f"{key}: {value!r} is not a public id"
        if key in AMOUNT_KEYS:
            asset = catalogue.asset(document["asset"])
            assert asset.format(asset.parse(value)) == value, f"{key}: {value!r}"
        if isinstance(value, str):
            assert not INTERNALS.search(value), f"{key}: {value!r}"


def _items(document: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(document, dict):
        for inner, value in document.items():
            yield from _items(value, inner)
    elif isinstance(document, list):
        for value in document:
            yield from _items(value, key)
    else:
        yield key, document
