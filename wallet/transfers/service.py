"""Internal transfers: one ledger transaction moving an asset from one wallet to another.

A transfer is the ledger transaction itself (reason `transfer`); its public id is `trf_` and
the transaction number, and memo and metadata are kept on the transaction.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from wallet.assets import Catalogue
from wallet.errors import InvalidRequest, NotFound, WalletError
from wallet.ledger import postings
from wallet.ledger.postings import Posting, Reason, TransactionRequest
from wallet.money import check_units
from wallet.wallets.models import WalletStatus
from wallet.wallets.service import UnknownWallet, WalletNotActive

PREFIX = "trf_"


class SameWallet(InvalidRequest):
    problem = "same-source-and-destination"
    title = "A transfer needs two different wallets"


class UnknownTransfer(NotFound):
    problem = "unknown-transfer"
    title = "No such transfer"


@dataclass(frozen=True)
class TransferRequest:
    tenant_id: str
    source_wallet_id: str
    destination_wallet_id: str
    asset: str
    amount: int
    memo: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transfer:
    id: str
    source_wallet_id: str
    destination_wallet_id: str
    asset: str
    amount: int
    memo: str | None
    metadata: dict[str, Any]
    created_at: datetime


def transfer(session: Session, catalogue: Catalogue, request: TransferRequest) -> Transfer:
    """Move the amount at once, or raise why not; nothing is written on failure."""
    (result,) = transfer_batch(session, catalogue, [request], atomic=True)
    if isinstance(result, WalletError):
        raise result
    return result


def transfer_batch(
    session: Session,
    catalogue: Catalogue,
    requests: Sequence[TransferRequest],
    *,
    atomic: bool,
) -> list[Transfer | WalletError]:
    """Many transfers in one ledger call, each with its own result.

    With `atomic`, the first failure fails them all and nothing is written. Invalid requests
    (unknown asset or wallet, same wallet, bad amount) fail the same way as refused ones.
    """
    accounts = _wallet_accounts(session, requests)
    prepared: list[TransactionRequest | WalletError] = []
    for request in requests:
        try:
            prepared.append(_ledger_request(catalogue, accounts, request))
        except WalletError as error:
            if atomic:
                return [error for _ in requests]
            prepared.append(error)
    valid = [item for item in prepared if isinstance(item, TransactionRequest)]
    applied = iter(postings.apply(session, valid, atomic=atomic) if valid else [])
    results: list[Transfer | WalletError] = []
    for request, item in zip(requests, prepared, strict=True):
        if isinstance(item, WalletError):
            results.append(item)
            continue
        outcome = next(applied)
        if outcome.error is not None:
            results.append(outcome.error)
        else:
            assert outcome.transaction_id is not None and outcome.created_at is not None
            results.append(
                Transfer(
                    id=f"{PREFIX}{outcome.transaction_id}",
                    source_wallet_id=request.source_wallet_id,
                    destination_wallet_id=request.destination_wallet_id,
                    asset=request.asset,
                    amount=request.amount,
                    memo=request.memo,
                    metadata=dict(request.metadata),
                    created_at=outcome.created_at,
                )
            )
    return results


def get_transfer(session: Session, tenant_id: str, transfer_id: str) -> Transfer:
    """A transfer of the tenant's wallets; another tenant's is answered as unknown."""
    number = transfer_id.removeprefix(PREFIX)
    if not transfer_id.startswith(PREFIX) or not number.isdigit() or len(number) > 18:
        raise UnknownTransfer(f"no transfer {transfer_id}")
    row = session.execute(
        text(
            """
            SELECT t.metadata, t.created_at, src.asset, -src.amount AS amount,
                   sa.wallet_id AS source, da.wallet_id AS destination
            FROM ledger_transactions t
            JOIN postings src ON src.transaction_id = t.id AND src.amount < 0
            JOIN accounts sa ON sa.id = src.account_id
            JOIN postings dst ON dst.transaction_id = t.id AND dst.amount > 0
            JOIN accounts da ON da.id = dst.account_id
            JOIN wallets w ON w.id = sa.wallet_id
            WHERE t.id = :id AND t.reason = 'transfer' AND w.tenant_id = :tenant
            """
        ),
        {"id": int(number), "tenant": tenant_id},
    ).one_or_none()
    if row is None:
        raise UnknownTransfer(f"no transfer {transfer_id}")
    return Transfer(
        id=transfer_id,
        source_wallet_id=row.source,
        destination_wallet_id=row.destination,
        asset=row.asset,
        amount=int(row.amount),
        memo=row.metadata.get("memo"),
        metadata=row.metadata.get("app", {}),
        created_at=row.created_at,
    )


@dataclass(frozen=True)
class _WalletAccount:
    account_id: int
    wallet_status: str


# The tenant's wallets among those named, with their account for each asset if it exists.
_WALLET_ACCOUNTS = text(
    """
    SELECT w.id AS wallet_id, x.asset, w.status, acc.id AS account_id
    FROM unnest(CAST(:wallets AS text[]), CAST(:assets AS text[])) AS x(wallet_id, asset)
    JOIN wallets w ON w.id = x.wallet_id AND w.tenant_id = :tenant
    LEFT JOIN accounts acc ON acc.wallet_id = x.wallet_id AND acc.asset = x.asset
    """
)
# Accounts are created on first use; a concurrent first use inserts the row once.
_OPEN_ACCOUNTS = text(
    """
    INSERT INTO accounts (wallet_id, asset)
    SELECT w.id, x.asset
    FROM unnest(CAST(:wallets AS text[]), CAST(:assets AS text[])) AS x(wallet_id, asset)
    JOIN wallets w ON w.id = x.wallet_id AND w.tenant_id = :tenant
    JOIN assets a ON a.code = x.asset
    ON CONFLICT (wallet_id, asset) DO NOTHING
    """
)


def _wallet_accounts(
    session: Session, requests: Sequence[TransferRequest]
) -> dict[tuple[str, str], _WalletAccount]:
    tenants = {request.tenant_id for request in requests}
    if len(tenants) != 1:
        raise InvalidRequest("a batch of transfers belongs to one tenant")
    pairs = sorted(
        {(r.source_wallet_id, r.asset) for r in requests}
        | {(r.destination_wallet_id, r.asset) for r in requests}
    )
    params = {
        "tenant": tenants.pop(),
        "wallets": [wallet for wallet, _ in pairs],
        "assets": [asset for _, asset in pairs],
    }
    rows = session.execute(_WALLET_ACCOUNTS, params).all()
    if any(row.account_id is None for row in rows):
        session.execute(_OPEN_ACCOUNTS, params)
        rows = session.execute(_WALLET_ACCOUNTS, params).all()
    return {(row.wallet_id, row.asset): _WalletAccount(row.account_id, row.status) for row in rows}


def _ledger_request(
    catalogue: Catalogue,
    accounts: Mapping[tuple[str, str], _WalletAccount],
    request: TransferRequest,
) -> TransactionRequest:
    asset = catalogue.asset(request.asset)
    amount = check_units(request.amount)
    if request.source_wallet_id == request.destination_wallet_id:
        raise SameWallet("source and destination are the same wallet")
    source = _active_account(accounts, request.source_wallet_id, asset.code)
    destination = _active_account(accounts, request.destination_wallet_id, asset.code)
    return TransactionRequest(
        reason=Reason.TRANSFER,
        postings=[Posting(source, -amount), Posting(destination, amount)],
        metadata={"memo": request.memo, "app": dict(request.metadata)},
    )


def _active_account(
    accounts: Mapping[tuple[str, str], _WalletAccount], wallet_id: str, asset: str
) -> int:
    found = accounts.get((wallet_id, asset))
    if found is None:
        raise UnknownWallet(f"no wallet {wallet_id}")
    if found.wallet_status != WalletStatus.ACTIVE:
        raise WalletNotActive(f"wallet {wallet_id} is {found.wallet_status}")
    return found.account_id
