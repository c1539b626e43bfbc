"""Deposit addresses (one per wallet per chain) and reading deposits, always within a tenant."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, tuple_
from sqlalchemy.orm import Session

from custody import InvalidChildKey
from wallet.assets.service import Catalogue
from wallet.deposits.addresses import DepositAddressBook
from wallet.deposits.errors import AddressBookError, DepositAddressesUnavailable, UnknownDeposit
from wallet.deposits.models import (
    ADDRESS_PREFIX,
    ChainCursor,
    Deposit,
    DepositAddress,
    DepositStatus,
)
from wallet.ids import new_id
from wallet.wallets.models import WalletStatus
from wallet.wallets.service import UnknownWallet, WalletNotActive, lock_status


@dataclass(frozen=True)
class IssuedAddress:
    """A wallet's deposit address on a chain, and whether this call created it."""

    address: DepositAddress
    created: bool


# Allocates the next index of the chain. The row stays locked until the transaction ends, so
# allocations on one chain are serialized, gap-free, and committed in index order.
_ALLOCATE_INDEX = text(
    """
    INSERT INTO deposit_address_counters AS c (chain, bip44_account, next_index)
    VALUES (:chain, :account, 1)
    ON CONFLICT (chain) DO UPDATE SET next_index = c.next_index + 1
    RETURNING c.bip44_account, c.next_index - 1 AS allocated
    """
)


def deposit_address(
    session: Session,
    tenant_id: str,
    wallet_id: str,
    chain: str,
    *,
    book: DepositAddressBook,
    catalogue: Catalogue,
) -> IssuedAddress:
    """The wallet's deposit address on `chain`, allocated and derived on first request."""
    catalogue.chain(chain)  # unknown chain -> UnknownChain
    existing = _address_of(session, wallet_id, chain)
    if existing is not None:
        if existing.tenant_id != tenant_id:
            raise UnknownWallet(f"no wallet {wallet_id}")
        return IssuedAddress(existing, created=False)
    if not book.issues_on(chain):
        raise DepositAddressesUnavailable(f"no deposit address key is configured for {chain}")

    status = lock_status(session, tenant_id, wallet_id)  # serializes first requests
    existing = _address_of(session, wallet_id, chain)
    if existing is not None:
        return IssuedAddress(existing, created=False)
    if status != WalletStatus.ACTIVE:
        raise WalletNotActive(f"wallet {wallet_id} is {status}")

    account = book.account(chain)
    while True:
        row = session.execute(_ALLOCATE_INDEX, {"chain": chain, "account": account}).one()
        if row.bip44_account != account:
            raise AddressBookError(
                f"chain {chain} issued addresses under BIP-44 account {row.bip44_account}, "
                f"but its configuration now gives account {account}"
            )
        try:
            address = book.address(chain, row.allocated)
            break
        except InvalidChildKey:
            continue  # BIP-32: an index without a valid key (odds ~2**-127) is skipped
    created = DepositAddress(
        id=new_id(ADDRESS_PREFIX),
        tenant_id=tenant_id,
        wallet_id=wallet_id,
        chain=chain,
        derivation_index=row.allocated,
        address=address,
    )
    session.add(created)
    session.flush()
    return IssuedAddress(created, created=True)


def _address_of(session: Session, wallet_id: str, chain: str) -> DepositAddress | None:
    return session.scalars(
        select(DepositAddress).where(
            DepositAddress.wallet_id == wallet_id, DepositAddress.chain == chain
        )
    ).one_or_none()


def wallet_deposit_addresses(
    session: Session, tenant_id: str, wallet_id: str
) -> Sequence[DepositAddress]:
    return session.scalars(
        select(DepositAddress)
        .where(DepositAddress.wallet_id == wallet_id, DepositAddress.tenant_id == tenant_id)
        .order_by(DepositAddress.chain)
    ).all()


def get_deposit(session: Session, tenant_id: str, deposit_id: str) -> Deposit:
    """The tenant's deposit; another tenant's id is answered as unknown."""
    deposit = session.scalars(
        select(Deposit).where(Deposit.id == deposit_id, Deposit.tenant_id == tenant_id)
    ).one_or_none()
    if deposit is None:
        raise UnknownDeposit(f"no deposit {deposit_id}")
    return deposit


def list_deposits(
    session: Session,
    tenant_id: str,
    *,
    wallet_id: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Sequence[Deposit]:
    """The tenant's deposits, newest first, optionally of one wallet, after (seen_at, id)."""
    query = select(Deposit).where(Deposit.tenant_id == tenant_id)
    if wallet_id is not None:
        query = query.where(Deposit.wallet_id == wallet_id)
    if after is not None:
        query = query.where(tuple_(Deposit.seen_at, Deposit.id) < tuple_(*after))
    return session.scalars(
        query.order_by(Deposit.seen_at.desc(), Deposit.id.desc()).limit(limit)
    ).all()


def current_confirmations(session: Session, deposits: Sequence[Deposit]) -> dict[str, int]:
    """Confirmations of each deposit now, from its chain's cursor; 0 once off the chain."""
    chains = {d.chain for d in deposits}
    tips = dict(
        session.execute(
            select(ChainCursor.chain, ChainCursor.block_number).where(ChainCursor.chain.in_(chains))
        ).all()
    )
    counts: dict[str, int] = {}
    for d in deposits:
        tip = tips.get(d.chain)
        off_chain = d.status in (DepositStatus.ORPHANED, DepositStatus.REVERSED)
        if tip is None or off_chain:
            counts[d.id] = 0 if off_chain else d.confirmations
        else:
            counts[d.id] = max(0, tip - d.block_number + 1)
    return counts
