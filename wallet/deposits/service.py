"""Deposit addresses (one per wallet per chain), reading deposits, and crediting those held
while a wallet was frozen, always within a tenant."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from custody import InvalidChildKey
from wallet.assets.service import Catalogue
from wallet.deposits import repository
from wallet.deposits.addresses import AddressIssuer
from wallet.deposits.crediting import credit_held
from wallet.deposits.errors import AddressBookError, DepositAddressesUnavailable, UnknownDeposit
from wallet.deposits.models import (
    ADDRESS_PREFIX,
    Deposit,
    DepositAddress,
    DepositStatus,
)
from wallet.events.service import emit_many
from wallet.ids import new_id
from wallet.wallets.errors import UnknownWallet, WalletNotActive
from wallet.wallets.models import Wallet, WalletStatus
from wallet.wallets.service import lock_status, set_status


@dataclass(frozen=True)
class IssuedAddress:
    """A wallet's deposit address on a chain, and whether this call created it."""

    address: DepositAddress
    created: bool


def deposit_address(
    session: Session,
    tenant_id: str,
    wallet_id: str,
    chain: str,
    *,
    issuer: AddressIssuer,
    catalogue: Catalogue,
) -> IssuedAddress:
    """The wallet's deposit address on `chain`, allocated and derived on first request."""
    catalogue.chain(chain)  # unknown chain -> UnknownChain
    existing = repository.address_of(session, wallet_id, chain)
    if existing is not None:
        if existing.tenant_id != tenant_id:
            raise UnknownWallet(f"no wallet {wallet_id}")
        return IssuedAddress(existing, created=False)
    if not issuer.issues_on(chain):
        raise DepositAddressesUnavailable(f"no deposit address key is configured for {chain}")

    status = lock_status(session, tenant_id, wallet_id)  # serializes first requests
    existing = repository.address_of(session, wallet_id, chain)
    if existing is not None:
        return IssuedAddress(existing, created=False)
    if status != WalletStatus.ACTIVE:
        raise WalletNotActive(f"wallet {wallet_id} is {status}")

    account = issuer.account(chain)
    while True:
        row = session.execute(repository.ALLOCATE_INDEX, {"chain": chain, "account": account}).one()
        if row.bip44_account != account:
            raise AddressBookError(
                f"chain {chain} issued addresses under BIP-44 account {row.bip44_account}, "
                f"but its configuration now gives account {account}"
            )
        try:
            address = issuer.address(chain, row.allocated)
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


def wallet_deposit_addresses(
    session: Session, tenant_id: str, wallet_id: str
) -> Sequence[DepositAddress]:
    return repository.wallet_addresses(session, tenant_id, wallet_id)


def get_deposit(session: Session, tenant_id: str, deposit_id: str) -> Deposit:
    """The tenant's deposit; another tenant's id is answered as unknown."""
    deposit = repository.find_deposit(session, tenant_id, deposit_id)
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
    return repository.tenant_deposits(session, tenant_id, wallet_id, after, limit)


def current_confirmations(session: Session, deposits: Sequence[Deposit]) -> dict[str, int]:
    """Confirmations of each deposit now, from its chain's cursor; 0 once off the chain."""
    chains = {d.chain for d in deposits}
    tips = repository.chain_tips(session, chains)
    counts: dict[str, int] = {}
    for d in deposits:
        tip = tips.get(d.chain)
        off_chain = d.status in (DepositStatus.ORPHANED, DepositStatus.REVERSED)
        if tip is None or off_chain:
            counts[d.id] = 0 if off_chain else d.confirmations
        else:
            counts[d.id] = max(0, tip - d.block_number + 1)
    return counts


def unfreeze(session: Session, catalogue: Catalogue, tenant_id: str, wallet_id: str) -> Wallet:
    """Make the wallet active again, and credit (announcing `deposit.credited`) the deposits
    that were confirmed while it was frozen, in the same transaction."""
    wallet = set_status(session, tenant_id, wallet_id, WalletStatus.ACTIVE)
    emit_many(session, credit_held(session, catalogue, wallet.id))
    return wallet
