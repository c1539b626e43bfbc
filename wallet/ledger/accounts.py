"""Ledger accounts: one per (wallet, asset) and one per (system name, asset); balances."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, TextClause, text
from sqlalchemy.orm import Session

from wallet.errors import NotFound


class UnknownAccount(NotFound):
    problem = "unknown-account"
    title = "No such ledger account"


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


# Both statements are race-free: concurrent first uses insert once and all read the same row.
_USER_ACCOUNT = text(
    """
    WITH created AS (
        INSERT INTO accounts (wallet_id, asset) VALUES (:wallet, :asset)
        ON CONFLICT (wallet_id, asset) DO NOTHING RETURNING id
    )
    SELECT id FROM created UNION ALL
    SELECT id FROM accounts WHERE wallet_id = :wallet AND asset = :asset
    """
)
_SYSTEM_ACCOUNT = text(
    """
    WITH created AS (
        INSERT INTO accounts (system_name, asset, allow_negative)
        VALUES (:name, :asset, :allow_negative)
        ON CONFLICT (system_name, asset) DO NOTHING RETURNING id
    )
    SELECT id FROM created UNION ALL
    SELECT id FROM accounts WHERE system_name = :name AND asset = :asset
    """
)


def user_account(session: Session, wallet_id: str, asset: str) -> int:
    """The wallet's account for `asset`, created on first use."""
    return _get_or_create(session, _USER_ACCOUNT, {"wallet": wallet_id, "asset": asset})


def system_account(session: Session, name: str, asset: str, *, allow_negative: bool = True) -> int:
    """A house or outside-world account such as `chain:devnet` or `fees`, created on first use."""
    params = {"name": name, "asset": asset, "allow_negative": allow_negative}
    return _get_or_create(session, _SYSTEM_ACCOUNT, params)


def _get_or_create(session: Session, statement: TextClause, params: dict[str, Any]) -> int:
    found = session.execute(statement, params).scalar()
    if found is None:
        # A concurrent first use inserted the row after this statement's snapshot was taken:
        # the insert saw the conflict, the select could not see the row; the next one can.
        found = session.execute(statement, params).scalar_one()
    return int(found)


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
