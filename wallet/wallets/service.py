"""Creating, finding and changing the state of wallets, always within one tenant."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.orm import Session

from wallet.errors import Conflict, NotFound
from wallet.ids import new_id
from wallet.wallets.models import Wallet, WalletStatus


class UnknownWallet(NotFound):
    problem = "unknown-wallet"
    title = "No such wallet"


class WalletNotActive(Conflict):
    problem = "wallet-not-active"
    title = "The wallet is frozen or closed"


class WalletInDebt(Conflict):
    problem = "wallet-in-debt"
    title = "The wallet holds a negative balance; it stays restricted until that is paid"


def create_wallet(
    session: Session, tenant_id: str, owner_ref: str, metadata: Mapping[str, Any] | None = None
) -> Wallet:
    wallet = Wallet(
        id=new_id("wal"), tenant_id=tenant_id, owner_ref=owner_ref, metadata_=dict(metadata or {})
    )
    session.add(wallet)
    session.flush()
    return wallet


def get_wallet(session: Session, tenant_id: str, wallet_id: str, *, lock: bool = False) -> Wallet:
    """The tenant's wallet; another tenant's id is answered as unknown (no existence leak)."""
    query = select(Wallet).where(Wallet.id == wallet_id, Wallet.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    wallet = session.scalars(query).one_or_none()
    if wallet is None:
        raise UnknownWallet(f"no wallet {wallet_id}")
    return wallet


def lock_status(session: Session, tenant_id: str, wallet_id: str) -> str:
    """Lock the tenant's wallet to the end of the transaction and return its status.

    FOR NO KEY UPDATE leaves rows that refer to the wallet (accounts, deposits, withdrawals)
    free to be inserted meanwhile.
    """
    status = session.execute(
        text("SELECT status FROM wallets WHERE id = :id AND tenant_id = :tenant FOR NO KEY UPDATE"),
        {"id": wallet_id, "tenant": tenant_id},
    ).scalar_one_or_none()
    if status is None:
        raise UnknownWallet(f"no wallet {wallet_id}")
    return str(status)


def tenant_wallets(
    session: Session,
    tenant_id: str,
    *,
    owner_ref: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int,
) -> list[Wallet]:
    """Up to `limit` of the tenant's wallets (only `owner_ref`'s when given), newest first,
    starting after the wallet at `after` (its created_at and id)."""
    query = select(Wallet).where(Wallet.tenant_id == tenant_id)
    if owner_ref is not None:
        query = query.where(Wallet.owner_ref == owner_ref)
    if after is not None:
        query = query.where(tuple_(Wallet.created_at, Wallet.id) < tuple_(*after))
    query = query.order_by(Wallet.created_at.desc(), Wallet.id.desc()).limit(limit)
    return list(session.scalars(query))


def set_status(session: Session, tenant_id: str, wallet_id: str, status: WalletStatus) -> Wallet:
    """Freeze or unfreeze a wallet. A wallet made active again may not hold a negative balance
    (a reversed pay-in it had spent restricted it): its accounts lose the right to go negative."""
    wallet = get_wallet(session, tenant_id, wallet_id, lock=True)
    if wallet.status == WalletStatus.CLOSED:
        raise WalletNotActive(f"wallet {wallet_id} is closed")
    if status == WalletStatus.ACTIVE:
        owed = session.scalars(
            text(
                "SELECT asset FROM accounts "
                "WHERE wallet_id = :id AND posted - pending_out < 0 ORDER BY asset"
            ),
            {"id": wallet_id},
        ).all()
        if owed:
            raise WalletInDebt(
                f"wallet {wallet_id} holds a negative balance of {', '.join(owed)}",
                assets=list(owed),
            )
        session.execute(
            text("UPDATE accounts SET allow_negative = false WHERE wallet_id = :id"),
            {"id": wallet_id},
        )
    wallet.status = status.value
    session.flush()
    return wallet


def require_active(wallet: Wallet) -> None:
    if wallet.status != WalletStatus.ACTIVE:
        raise WalletNotActive(f"wallet {wallet.id} is {wallet.status}")
