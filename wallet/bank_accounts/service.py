"""Linking bank accounts: the provider checks and tokenizes the details; we keep the token.

Linking asks the provider over the network, so it is three steps the edge runs apart: the
wallet is checked in one transaction, the provider is asked with none open, and the link is
recorded in another. Linking the same token to the same wallet again gives the same link.
"""

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from fiat import (
    BankAccountDetails,
    BankProvider,
    LinkedBankAccount,
    NotFound,
    OutcomeUnknown,
    ProviderRejected,
)
from wallet.assets.service import AssetKind, Catalogue
from wallet.bank_accounts.errors import BankAccountMismatch, BankAccountRefused
from wallet.bank_accounts.models import BANK_ACCOUNT_PREFIX, BankAccount
from wallet.bank_accounts.repository import find_linked, get_bank_account
from wallet.bank_accounts.schemas import BankAccountCreate
from wallet.banking.errors import BankUnavailable, UnsupportedCurrency
from wallet.ids import new_id
from wallet.wallets.service import get_wallet


def check_linkable(session: Session, tenant_id: str, wallet_id: str) -> None:
    """The wallet must be the tenant's."""
    get_wallet(session, tenant_id, wallet_id)


def ask_provider(
    bank: BankProvider, request: BankAccountCreate, provider_key: str
) -> LinkedBankAccount:
    """The provider's account for the request: tokenized from the details, or found by token."""
    try:
        if request.token is not None:
            return bank.get_bank_account(request.token)
        assert request.holder_name and request.account_number
        assert request.currency and request.country
        return bank.link_bank_account(
            BankAccountDetails(
                idempotency_key=provider_key,
                holder_name=request.holder_name,
                account_number=request.account_number,
                currency=request.currency,
                country=request.country,
            )
        )
    except NotFound as error:
        raise BankAccountRefused(f"the bank holds no account {request.token!r}") from error
    except ProviderRejected as error:
        raise BankAccountRefused(error.message or error.code, code=error.code) from error
    except OutcomeUnknown as error:
        # Not the provider's own words: they may name its hosts and internals.
        raise BankUnavailable("the bank did not answer; try again shortly") from error


def record_link(
    session: Session,
    tenant_id: str,
    wallet_id: str,
    linked: LinkedBankAccount,
    *,
    provider: str,
    catalogue: Catalogue,
) -> tuple[BankAccount, bool]:
    """The wallet's link to the provider's account, made now (True) or found."""
    asset = catalogue.assets.get(linked.currency)
    if asset is None or asset.kind != AssetKind.FIAT:
        raise UnsupportedCurrency(f"{linked.currency} is not a fiat asset of this service")
    get_wallet(session, tenant_id, wallet_id, lock=True)
    found = find_linked(session, wallet_id, provider, linked.token)
    if found is not None:
        return found, False
    account = BankAccount(
        id=new_id(BANK_ACCOUNT_PREFIX),
        tenant_id=tenant_id,
        wallet_id=wallet_id,
        provider=provider,
        token=linked.token,
        holder_name=linked.holder_name,
        last4=linked.last4,
        currency=linked.currency,
        country=linked.country,
    )
    session.add(account)
    session.flush()
    return account, True


def unlink(session: Session, tenant_id: str, bank_account_id: str) -> None:
    """Forget the link; payments already made with it go on."""
    account = get_bank_account(session, tenant_id, bank_account_id)
    account.deleted_at = datetime.now(UTC)
    session.flush()


def payment_account(
    session: Session,
    tenant_id: str,
    bank_account_id: str,
    *,
    wallet_id: str,
    provider: str,
    asset: str,
) -> BankAccount:
    """The tenant's bank account, if a payment of `asset` for the wallet at `provider` may
    use it."""
    account = get_bank_account(session, tenant_id, bank_account_id)
    if account.wallet_id != wallet_id:
        raise BankAccountMismatch(f"bank account {account.id} is not linked to {wallet_id}")
    if account.provider != provider:
        raise BankAccountMismatch(f"bank account {account.id} is at {account.provider}")
    if account.currency != asset:
        raise BankAccountMismatch(f"bank account {account.id} holds {account.currency}")
    return account
