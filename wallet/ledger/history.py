"""A wallet's ledger history: its accounts' postings, newest first, a slice at a time.

A read model over the ledger's tables; it writes nothing.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class PostingKey:
    """Where a posting sits in a history, newest first: its time, then account and version."""

    created_at: datetime
    account_id: int
    account_version: int


@dataclass(frozen=True)
class HistoryEntry:
    """One posting on one of the wallet's accounts, with what its transaction says."""

    account_id: int
    account_version: int
    transaction_id: int
    reason: str
    asset: str
    amount: int
    balance_after: int
    created_at: datetime
    memo: str | None
    metadata: dict[str, Any]

    @property
    def key(self) -> PostingKey:
        return PostingKey(self.created_at, self.account_id, self.account_version)


@dataclass(frozen=True)
class HistoryFilter:
    asset: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def wallet_history(
    session: Session,
    wallet_id: str,
    history_filter: HistoryFilter,
    *,
    after: PostingKey | None,
    limit: int,
) -> list[HistoryEntry]:
    """Up to `limit` entries older than `after` (from the newest when `after` is None)."""
    conditions = ["a.wallet_id = :wallet"]
    params: dict[str, Any] = {"wallet": wallet_id, "limit": limit}
    if history_filter.asset is not None:
        conditions.append("p.asset = :asset")
        params["asset"] = history_filter.asset
    if history_filter.created_after is not None:
        conditions.append("p.created_at > :created_after")
        params["created_after"] = history_filter.created_after
    if history_filter.created_before is not None:
        conditions.append("p.created_at < :created_before")
        params["created_before"] = history_filter.created_before
    if after is not None:
        conditions.append(
            "(p.created_at, p.account_id, p.account_version) < (:after_time, :after_account, "
            ":after_version)"
        )
        params["after_time"] = after.created_at
        params["after_account"] = after.account_id
        params["after_version"] = after.account_version
    # Each condition is one of the fixed fragments above; the values are bound parameters.
    query = f"""
        SELECT p.account_id, p.account_version, p.transaction_id, p.asset, p.amount,
               p.posted_after, p.created_at, t.reason, t.metadata
        FROM postings p
        JOIN accounts a ON a.id = p.account_id
        JOIN ledger_transactions t ON t.id = p.transaction_id
        WHERE {" AND ".join(conditions)}
        ORDER BY p.created_at DESC, p.account_id DESC, p.account_version DESC
        LIMIT :limit
    """  # noqa: S608
    return [
        HistoryEntry(
            account_id=row.account_id,
            account_version=row.account_version,
            transaction_id=row.transaction_id,
            reason=row.reason,
            asset=row.asset,
            amount=int(row.amount),
            balance_after=int(row.posted_after),
            created_at=row.created_at,
            memo=_memo(row.metadata),
            metadata=_app_metadata(row.metadata),
        )
        for row in session.execute(text(query), params)
    ]


def _memo(metadata: dict[str, Any]) -> str | None:
    memo = metadata.get("memo")
    return memo if isinstance(memo, str) else None


def _app_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The app's own metadata; the rest of a transaction's metadata is internal."""
    app = metadata.get("app")
    return app if isinstance(app, dict) else {}
