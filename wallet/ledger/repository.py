"""The ledger's queries: accounts (one per (wallet, asset) and one per (system name, asset)),
balances, and a wallet's history (its accounts' postings, newest first, a slice at a time)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from wallet.ledger.errors import UnknownAccount


@dataclass(frozen=True)
class Balance:
    """An account's balance; `available` is what may be spent or reserved now."""

    account_id: int
    asset: str
    posted: int
    pending_in: int
    pending_out: int
    version: int

    @property
    def available(self) -> int:
        return self.posted - self.pending_out


# Opened on first use by the database function, the one the pay-ins' function calls too:
# concurrent first uses insert once and all read the same row.
_ACCOUNT = text("SELECT ledger_account(:wallet, :name, :asset)")


def user_account(session: Session, wallet_id: str, asset: str) -> int:
    """The wallet's account for `asset`, created on first use."""
    params = {"wallet": wallet_id, "name": None, "asset": asset}
    return int(session.execute(_ACCOUNT, params).scalar_one())


def system_account(session: Session, name: str, asset: str) -> int:
    """A house or outside-world account such as `chain:devnet` or `fees` (it may go negative),
    created on first use."""
    return int(
        session.execute(_ACCOUNT, {"wallet": None, "name": name, "asset": asset}).scalar_one()
    )


def lock_accounts(session: Session, account_ids: Iterable[int]) -> None:
    """Lock the accounts in id order, the order every ledger function locks in: a transaction
    making several ledger calls takes all their locks first, so it cannot deadlock with
    another that locks some of the same accounts."""
    session.execute(_LOCK_ACCOUNTS, {"ids": sorted(set(account_ids))})


_LOCK_ACCOUNTS = text("SELECT 1 FROM accounts WHERE id = ANY(:ids) ORDER BY id FOR UPDATE")


# Many wallets' accounts in one statement. Only the pairs the statement's snapshot lacks are
# inserted (existing accounts use up no ids), in key order, so two concurrent first uses of the
# same accounts wait for each other instead of deadlocking.
_USER_ACCOUNTS = text(
    """
    WITH wanted AS (
        SELECT DISTINCT k.wallet_id, k.asset
        FROM unnest(CAST(:wallets AS text[]), CAST(:assets AS text[])) AS k(wallet_id, asset)
    ),
    found AS (
        SELECT a.id, a.wallet_id, a.asset FROM accounts a JOIN wanted w USING (wallet_id, asset)
    ),
    created AS (
        INSERT INTO accounts (wallet_id, asset)
        SELECT w.wallet_id, w.asset FROM wanted w
        WHERE NOT EXISTS (
            SELECT 1 FROM found f WHERE f.wallet_id = w.wallet_id AND f.asset = w.asset
        )
        ORDER BY w.wallet_id, w.asset
        ON CONFLICT (wallet_id, asset) DO NOTHING
        RETURNING id, wallet_id, asset
    )
    SELECT id, wallet_id, asset FROM found UNION ALL SELECT id, wallet_id, asset FROM created
    """
)


def user_accounts(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The accounts of many (wallet, asset) pairs, those missing created, in one statement."""
    wanted = sorted(set(keys))
    found: dict[tuple[str, str], int] = {}
    # As in `ledger_account`: a pair a concurrent first use inserted after the first
    # statement's snapshot was taken is missing from its answer, and visible to the second.
    for _ in range(2):
        missing = [key for key in wanted if key not in found]
        if not missing:
            return found
        rows = session.execute(
            _USER_ACCOUNTS,
            {"wallets": [wallet for wallet, _ in missing], "assets": [a for _, a in missing]},
        )
        found.update(((row.wallet_id, row.asset), int(row.id)) for row in rows)
    missing = [key for key in wanted if key not in found]
    if missing:
        raise RuntimeError(f"the accounts of {missing} were neither found nor created")
    return found


_BALANCE_COLUMNS = "id AS account_id, asset, posted, pending_in, pending_out, version"


def balance(session: Session, account_id: int) -> Balance:
    row = session.execute(
        text(f"SELECT {_BALANCE_COLUMNS} FROM accounts WHERE id = :id"),  # noqa: S608
        {"id": account_id},
    ).one_or_none()
    if row is None:
        raise UnknownAccount(f"no account {account_id}")
    return _to_balance(row)


def wallet_balances(session: Session, wallet_id: str) -> list[Balance]:
    rows = session.execute(
        text(
            f"SELECT {_BALANCE_COLUMNS} FROM accounts WHERE wallet_id = :wallet ORDER BY asset"  # noqa: S608
        ),
        {"wallet": wallet_id},
    ).all()
    return [_to_balance(row) for row in rows]


def _to_balance(row: Row[Any]) -> Balance:
    return Balance(
        account_id=row.account_id,
        asset=row.asset,
        posted=int(row.posted),
        pending_in=int(row.pending_in),
        pending_out=int(row.pending_out),
        version=row.version,
    )


def posted_at_version(session: Session, account_id: int, version: int) -> int:
    """The posted balance right after the account's `version`-th posting (0 before any)."""
    if version == 0:
        return 0
    value = session.execute(
        text("SELECT posted_after FROM postings WHERE account_id = :id AND account_version = :v"),
        {"id": account_id, "v": version},
    ).scalar_one_or_none()
    if value is None:
        raise UnknownAccount(f"account {account_id} has no version {version}")
    return int(value)


def posted_at_time(session: Session, account_id: int, when: datetime) -> int:
    """The posted balance as of `when`: one index lookup on (account, time)."""
    value = session.execute(
        text(
            "SELECT posted_after FROM postings WHERE account_id = :id AND created_at <= :when "
            "ORDER BY created_at DESC, account_version DESC LIMIT 1"
        ),
        {"id": account_id, "when": when},
    ).scalar_one_or_none()
    return 0 if value is None else int(value)


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


# The write path is in the database functions (migration 0001); each answers with JSON.
_APPLY = text("SELECT ledger_apply(CAST(:transactions AS jsonb), :atomic)")
_HOLD = text("SELECT ledger_hold(:debit, :credit, :amount, :reason, CAST(:metadata AS jsonb))")
_RESOLVE = text("SELECT ledger_resolve_hold(:hold, :amount, CAST(:metadata AS jsonb))")
_VOID_MANY = text("SELECT ledger_void_holds(CAST(:holds AS bigint[]))")


def apply_transactions(session: Session, transactions: str, *, atomic: bool) -> dict[str, Any]:
    """`ledger_apply` on a JSON list of transactions: its outcome document."""
    params = {"transactions": transactions, "atomic": atomic}
    outcome: dict[str, Any] = session.execute(_APPLY, params).scalar_one()
    return outcome


def place_hold(
    session: Session, *, debit: int, credit: int, amount: int, reason: str, metadata: str
) -> dict[str, Any]:
    """`ledger_hold`: its outcome document."""
    params = {
        "debit": debit,
        "credit": credit,
        "amount": amount,
        "reason": reason,
        "metadata": metadata,
    }
    outcome: dict[str, Any] = session.execute(_HOLD, params).scalar_one()
    return outcome


def resolve_hold(
    session: Session, hold_id: int, amount: int | None, metadata: str | None
) -> dict[str, Any]:
    """`ledger_resolve_hold` (post `amount`, or void with None): its outcome document."""
    params = {"hold": hold_id, "amount": amount, "metadata": metadata}
    outcome: dict[str, Any] = session.execute(_RESOLVE, params).scalar_one()
    return outcome


def void_holds(session: Session, hold_ids: list[int]) -> dict[str, Any]:
    """`ledger_void_holds`: its outcome document."""
    outcome: dict[str, Any] = session.execute(_VOID_MANY, {"holds": hold_ids}).scalar_one()
    return outcome


def transaction_postings(session: Session, transaction_id: int) -> list[tuple[int, int]]:
    """(account, amount) of each posting of the transaction, by account."""
    rows = session.execute(
        text(
            "SELECT account_id, amount FROM postings WHERE transaction_id = :id ORDER BY account_id"
        ),
        {"id": transaction_id},
    )
    return [(int(row.account_id), int(row.amount)) for row in rows]
