"""Creating, finding and changing the state of wallets, always within one tenant."""

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from wallet.ids import new_id
from wallet.wallets import repository
from wallet.wallets.errors import UnknownWallet, WalletNotActive
from wallet.wallets.models import Wallet, WalletStatus


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
    wallet = repository.find_wallet(session, tenant_id, wallet_id, lock=lock)
    if wallet is None:
        raise UnknownWallet(f"no wallet {wallet_id}")
    return wallet


def lock_status(session: Session, tenant_id: str, wallet_id: str) -> str:
    """Lock the tenant's wallet to the end of the transaction and return its status.

    FOR NO KEY UPDATE leaves rows that refer to the wallet (accounts, deposits, withdrawals)
    free to be inserted meanwhile.
    """
    status = repository.lock_status(session, tenant_id, wallet_id)
    if status is None:
        raise UnknownWallet(f"no wallet {wallet_id}")
    return str(status)


def share_lock_statuses(session: Session, wallet_ids: Collection[str]) -> dict[str, str]:
    """Share-lock the wallets in id order, to the end of the transaction, and return their
    statuses: a freeze waits for the transaction, and one that committed first is seen."""
    return repository.share_lock_statuses(session, sorted(wallet_ids))


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
    return repository.tenant_wallets(session, tenant_id, owner_ref, after, limit)


def set_status(session: Session, tenant_id: str, wallet_id: str, status: WalletStatus) -> Wallet:
    wallet = get_wallet(session, tenant_id, wallet_id, lock=True)
    if wallet.status == WalletStatus.CLOSED:
        raise WalletNotActive(f"wallet {wallet_id} is closed")
    wallet.status = status.value
    session.flush()
    return wallet


def require_active(wallet: Wallet) -> None:
    if wallet.status != WalletStatus.ACTIVE:
        raise WalletNotActive(f"wallet {wallet.id} is {wallet.status}")
