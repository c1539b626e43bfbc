"""What the chain says about sent transactions and their sender: receipts, pool, nonces,
balances."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chains.abi import encode_call
from chains.model import normalize_address
from chains.rpc import RpcCall, RpcClient, RpcProtocolError


@dataclass(frozen=True, slots=True)
class Receipt:
    """The receipt of a mined transaction; hashes are lowercase hex, the fee in wei."""

    tx_hash: str
    block_number: int
    block_hash: str
    succeeded: bool
    gas_used: int
    effective_gas_price: int

    @property
    def fee(self) -> int:
        """The network fee the sender paid: gas used times the effective gas price."""
        return self.gas_used * self.effective_gas_price


class TransactionState(enum.Enum):
    """Where a transaction hash stands, as far as the node can tell now."""

    MINED = "mined"
    """In a block of the node's canonical chain (with a receipt: status 1 or 0)."""
    PENDING = "pending"
    """In the node's pool, not mined."""
    NOT_FOUND = "not_found"
    """Unknown to the node: never received, dropped, replaced, or removed by a reorg."""


@dataclass(frozen=True, slots=True)
class TransactionStatus:
    tx_hash: str
    state: TransactionState
    receipt: Receipt | None = None


@dataclass(frozen=True, slots=True)
class AccountNonces:
    """`latest` is the next nonce after the transactions mined; `pending` also counts the
    sender's transactions in the node's pool."""

    latest: int
    pending: int


def transaction_statuses(rpc: RpcClient, tx_hashes: Sequence[str]) -> list[TransactionStatus]:
    """The state of each hash (for instance every attempt of one nonce), in one batch."""
    calls: list[RpcCall] = []
    for tx_hash in tx_hashes:
        calls.append(RpcCall("eth_getTransactionReceipt", (tx_hash,)))
        calls.append(RpcCall("eth_getTransactionByHash", (tx_hash,)))
    results = rpc.batch(calls)
    statuses = []
    for i, tx_hash in enumerate(tx_hashes):
        receipt, transaction = results[2 * i], results[2 * i + 1]
        if receipt is not None:
            statuses.append(TransactionStatus(tx_hash, TransactionState.MINED, _receipt(receipt)))
        elif transaction is not None:
            statuses.append(TransactionStatus(tx_hash, TransactionState.PENDING))
        else:
            statuses.append(TransactionStatus(tx_hash, TransactionState.NOT_FOUND))
    return statuses


def transaction_status(rpc: RpcClient, tx_hash: str) -> TransactionStatus:
    """The state of one transaction hash."""
    return transaction_statuses(rpc, [tx_hash])[0]


def account_nonces(rpc: RpcClient, address: str) -> AccountNonces:
    """The sender's `latest` and `pending` transaction counts, read in one batch."""
    account = normalize_address(address)
    latest, pending = rpc.batch(
        [
            RpcCall("eth_getTransactionCount", (account, "latest")),
            RpcCall("eth_getTransactionCount", (account, "pending")),
        ]
    )
    return AccountNonces(latest=int(latest, 16), pending=int(pending, 16))


def native_balance(rpc: RpcClient, address: str, block: str = "latest") -> int:
    """The address's ETH balance in wei at `block` (a tag or a hex number)."""
    return int(rpc.call("eth_getBalance", normalize_address(address), block), 16)


def token_balance(rpc: RpcClient, token: str, holder: str, block: str = "latest") -> int:
    """The holder's ERC-20 `balanceOf` at `block`, in the token's smallest unit."""
    call = {"to": normalize_address(token), "data": encode_call("balanceOf(address)", holder)}
    return int(rpc.call("eth_call", call, block), 16)


def _receipt(raw: dict[str, Any]) -> Receipt:
    try:
        return Receipt(
            tx_hash=raw["transactionHash"].lower(),
            block_number=int(raw["blockNumber"], 16),
            block_hash=raw["blockHash"].lower(),
            succeeded=int(raw["status"], 16) == 1,
            gas_used=int(raw["gasUsed"], 16),
            effective_gas_price=int(raw["effectiveGasPrice"], 16),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise RpcProtocolError(f"unexpected receipt {raw!r:.200}") from e
