"""Queries of linked bank accounts, always within one tenant."""

from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from wallet.bank_accounts.errors import UnknownBankAccount
from wallet.bank_accounts.models import BankAccount


def find_linked(session: Session, wallet_id: str, provider: str, token: str) -> BankAccount | None:
    """The wallet's live link to the provider's `token`, if any."""
    return session.scalars(
        select(BankAccount).where(
            BankAccount.wallet_id == wallet_id,
            BankAccount.provider == provider,
            BankAccount.token == token,
            BankAccount.deleted_at.is_(None),
        )
    ).one_or_none()


def get_bank_account(session: Session, tenant_id: str, bank_account_id: str) -> BankAccount:
    """The tenant's live bank account; another tenant's or a deleted one is unknown."""
    account = session.scalars(
        select(BankAccount).where(
            BankAccount.id == bank_account_id,
            BankAccount.tenant_id == tenant_id,
            BankAccount.deleted_at.is_(None),
        )
    ).one_or_none()
    if account is None:
        raise UnknownBankAccount(f"no bank account {bank_account_id}")
    return account


def list_bank_accounts(
    session: Session,
    tenant_id: str,
    *,
    wallet_id: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[BankAccount]:
    """Up to `limit` live bank accounts of the tenant (of one wallet if given), newest first."""
    query = select(BankAccount).where(
        BankAccount.tenant_id == tenant_id, BankAccount.deleted_at.is_(None)
    )
    if wallet_id is not None:
        query = query.where(BankAccount.wallet_id == wallet_id)
    if after is not None:
        query = query.where(tuple_(BankAccount.created_at, BankAccount.id) < tuple_(*after))
    query = query.order_by(BankAccount.created_at.desc(), BankAccount.id.desc()).limit(limit)
    return list(session.scalars(query))
