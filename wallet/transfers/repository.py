"""The transfers' queries: the one write statement, and reading a transfer back."""

from typing import Any

import psycopg
from sqlalchemy import Row, text
from sqlalchemy.orm import Session

# The transfer's postings are `transfer_apply`'s, called by `transfer_once` (both in
# wallet/sql/functions); refusals come back as ledger_apply's failures, plus the wallets'.
_ONCE = "SELECT transfer_once(%s::jsonb, %s, %s)"

_TRANSFER = text(
    """
    SELECT t.metadata, t.created_at, src.asset, -src.amount AS amount,
           sa.wallet_id AS source, da.wallet_id AS destination
    FROM ledger_transactions t
    JOIN postings src ON src.transaction_id = t.id AND src.amount < 0
    JOIN accounts sa ON sa.id = src.account_id
    JOIN postings dst ON dst.transaction_id = t.id AND dst.amount > 0
    JOIN accounts da ON da.id = dst.account_id
    JOIN wallets w ON w.id = sa.wallet_id
    WHERE t.id = :id AND t.reason = 'transfer' AND w.tenant_id = :tenant
    """
)


def transfer_once(
    connection: psycopg.Connection[Any], transfers: str, prefix: str, event_type: str
) -> list[dict[str, Any]]:
    """`transfer_once` on a JSON list of keyed transfers: one answer per transfer, in order."""
    row = connection.execute(_ONCE, (transfers, prefix, event_type)).fetchone()
    assert row is not None
    answers: list[dict[str, Any]] = row[0]
    return answers


def find_transfer(session: Session, tenant_id: str, transaction_id: int) -> Row[Any] | None:
    """The transfer's transaction with its two postings' wallets, if one of the tenant's."""
    params = {"id": transaction_id, "tenant": tenant_id}
    return session.execute(_TRANSFER, params).one_or_none()
