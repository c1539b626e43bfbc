"""Schemathesis checks of our own, loaded by the CLI as its hooks module (`SCHEMATHESIS_HOOKS`).

Every error is a problem document; a request valid by the schema is never refused for its shape:
its only 422s are the business rules that depend on the ledger or on two fields together.
"""

import schemathesis
from schemathesis import Case
from schemathesis.checks import CheckContext
from schemathesis.core.transport import Response

from wallet.api.problems import PROBLEM_MEDIA_TYPE
from wallet.errors import PROBLEM_BASE

BUSINESS_RULES = frozenset(
    PROBLEM_BASE + name
    for name in (
        "insufficient-funds",  # the source's balance
        "too-many-decimals",  # the amount's decimals against the asset's
        "same-source-and-destination",  # two fields naming one wallet
        # Withdrawals: rules over two fields, the configuration, the chain or the ledger.
        "asset-not-on-chain",
        "address-checksum-mismatch",  # EIP-55: a hash of the address, no pattern
        "zero-address",
        "blocked-address",
        "destination-is-own-wallet",
        "withdrawal-limit-exceeded",
        "daily-withdrawal-limit-exceeded",
        "withdrawal-fee-rate-missing",
        "withdrawal-not-cancellable",
        "withdrawal-not-awaiting-approval",
        "requester-cannot-approve",
        "already-approved",
        "wallet-not-active",
        # Fiat: the fee against the amount, the account against the wallet, the wallet's debt.
        "amount-below-fee",
        "unsupported-currency",  # a rail's currencies: configuration
        "bank-account-refused",  # what the bank holds
        "bank-account-mismatch",
        "wallet-in-debt",
        # Webhook URLs: where the host name points, under the environment's policy.
        "webhook-destination-not-allowed",
    )
)


@schemathesis.check
def errors_are_problems(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type == PROBLEM_MEDIA_TYPE, f"error {response.status_code} is {content_type}"
        document = response.json()
        assert {"type", "title", "status", "detail"} <= document.keys(), document
        assert document["status"] == response.status_code, document
    return None


@schemathesis.check
def valid_requests_pass_validation(
    ctx: CheckContext, response: Response, case: Case
) -> bool | None:
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and response.status_code == 422:
        problem = response.json()
        assert problem["type"] in BUSINESS_RULES, f"a schema-valid request refused: {problem}"
    return None
