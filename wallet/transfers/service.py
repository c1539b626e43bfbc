"""Internal transfers: one ledger transaction moving an asset from one wallet to another.

A transfer is the ledger transaction itself (reason `transfer`); its public id is `trf_` and
the transaction number, and memo and metadata are kept on the transaction.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from wallet.assets.service import Catalogue
from wallet.errors import WalletError
from wallet.events.service import EVENT_PREFIX, registered
from wallet.idempotency.service import IdempotencyKey, Outcome, once_answer
from wallet.ids import new_id
from wallet.ledger.errors import ErrorCode, InsufficientFunds, error_from_outcome
from wallet.money import check_units
from wallet.transfers import repository
from wallet.transfers.errors import SameWallet, UnknownTransfer
from wallet.wallets.errors import UnknownWallet, WalletNotActive

PREFIX = "trf_"
TRANSFER_CREATED = registered("transfer.created")
# Times in transfer documents: UTC to the microsecond, as transfer_once writes them.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


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


@dataclass(frozen=True)
class KeyedTransfer:
    """A transfer request made under an idempotency key."""

    request: TransferRequest
    key: IdempotencyKey


def transfers_once(
    connection: psycopg.Connection[Any], requests: Sequence[KeyedTransfer], catalogue: Catalogue
) -> list[Outcome | WalletError]:
    """Make each transfer and announce it (`transfer.created`), unless its key was used already.

    One statement on an autocommit connection for all of them: each one's key claim, postings,
    event and outcome (the transfer's `document`, or the problem that refused it) commit
    together. An answer is the outcome under the key (replayed if the key was used before), or
    an error found before the database or an `IdempotencyConflict`: then nothing was written,
    and the failure is the caller's to keep with `record_failure` (for a conflict, that raises
    it). The keys must differ.
    """
    answers: list[Outcome | WalletError | None] = []
    sent: list[dict[str, Any]] = []
    for keyed in requests:
        try:
            transfer = _checked(catalogue, keyed.request)
        except WalletError as error:
            answers.append(error)
            continue
        answers.append(None)
        sent.append(
            {
                "tenant": keyed.key.scope,
                "key": keyed.key.key,
                "request_hash": keyed.key.request_hash,
                "transfer": transfer,
                "document": _document_fields(catalogue, keyed.request),
                "event_id": new_id(EVENT_PREFIX),
            }
        )
    if not sent:
        return [answer for answer in answers if answer is not None]
    stored = iter(repository.transfer_once(connection, json.dumps(sent), PREFIX, TRANSFER_CREATED))
    return [
        answer if answer is not None else _once_answer(catalogue, keyed, next(stored))
        for keyed, answer in zip(requests, answers, strict=True)
    ]


def _once_answer(
    catalogue: Catalogue, keyed: KeyedTransfer, answer: dict[str, Any]
) -> Outcome | WalletError:
    return once_answer(keyed.key, answer, partial(_refusal, catalogue, keyed.request))


def document(catalogue: Catalogue, moved: Transfer) -> dict[str, Any]:
    """The transfer as the API shows it and `transfer.created` carries it."""
    return {
        "id": moved.id,
        **_document_fields(catalogue, moved),
        "created_at": moved.created_at.astimezone(UTC).strftime(TIME_FORMAT),
    }


def get_transfer(session: Session, tenant_id: str, transfer_id: str) -> Transfer:
    """A transfer of the tenant's wallets; another tenant's is answered as unknown."""
    number = transfer_id.removeprefix(PREFIX)
    if not transfer_id.startswith(PREFIX) or not number.isdigit() or len(number) > 18:
        raise UnknownTransfer(f"no transfer {transfer_id}")
    row = repository.find_transfer(session, tenant_id, int(number))
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


def _checked(catalogue: Catalogue, request: TransferRequest) -> dict[str, Any]:
    """The request as `transfer_apply` takes it, or why it can't be made (no database needed)."""
    asset = catalogue.asset(request.asset)
    amount = check_units(request.amount)
    if request.source_wallet_id == request.destination_wallet_id:
        raise SameWallet("source and destination are the same wallet")
    return {
        "tenant": request.tenant_id,
        "source": request.source_wallet_id,
        "destination": request.destination_wallet_id,
        "asset": asset.code,
        "amount": str(amount),
        "metadata": {"memo": request.memo, "app": dict(request.metadata)},
    }


def _refusal(
    catalogue: Catalogue, request: TransferRequest, failure: dict[str, Any]
) -> WalletError:
    if failure["error"] == ErrorCode.UNKNOWN_WALLET:
        return UnknownWallet(f"no wallet {failure['wallet_id']}")
    if failure["error"] == ErrorCode.WALLET_NOT_ACTIVE:
        return WalletNotActive(f"wallet {failure['wallet_id']} is {failure['status']}")
    if failure["error"] == ErrorCode.INSUFFICIENT_FUNDS:
        # Only the source's account is debited, so it is the one short of funds.
        asset = catalogue.asset(request.asset)
        available = asset.format(int(failure["available"]))
        return InsufficientFunds(
            f"wallet {request.source_wallet_id} has {available} {asset.code} available",
            wallet_id=request.source_wallet_id,
            asset=asset.code,
            available=available,
        )
    return error_from_outcome(failure)


def _document_fields(catalogue: Catalogue, moved: Transfer | TransferRequest) -> dict[str, Any]:
    return {
        "source_wallet_id": moved.source_wallet_id,
        "destination_wallet_id": moved.destination_wallet_id,
        "asset": moved.asset,
        "amount": catalogue.asset(moved.asset).format(moved.amount),
        "memo": moved.memo,
        "metadata": dict(moved.metadata),
    }
