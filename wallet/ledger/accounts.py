"""Ledger accounts: one per (wallet, asset) and one per (system name, asset); balances."""

from collections.abc import Iterable
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
    # As in `_get_or_create`: a pair a concurrent first use inserted after the first
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
