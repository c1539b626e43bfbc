"""Sending a signed raw transaction, with the node's answer classified by what it means."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from eth_utils.crypto import keccak

from chains.rpc import NodeUnreachable, RpcCall, RpcClient, RpcProtocolError, RpcResponseError


class SendOutcome(enum.Enum):
    """What an `eth_sendRawTransaction` answer says about the transaction.

    Re-sending the same raw bytes is always safe (same hash, same nonce), so every outcome
    but REJECTED allows it; what to do next is the caller's.
    """

    ACCEPTED = "accepted"
    """The node took it into its pool."""
    ALREADY_KNOWN = "already_known"
    """The node already holds this very transaction: as good as accepted."""
    NONCE_TOO_LOW = "nonce_too_low"
    """The sender's nonce is past it: this or another transaction of that nonce was mined.
    Look up the receipts of every attempt at that nonce; never sign anew for it."""
    REPLACEMENT_UNDERPRICED = "replacement_underpriced"
    """Another transaction with this nonce is pending and pays at least as much."""
    UNDERPRICED = "underpriced"
    """The fees are below what the node accepts now (base fee, minimum tip)."""
    INSUFFICIENT_FUNDS = "insufficient_funds"
    """The sender cannot pay value plus gas at the fee cap."""
    TRANSIENT = "transient"
    """No answer, or an answer about the node's own state: outcome unknown, send again later."""
    REJECTED = "rejected"
    """Any other refusal: the transaction as signed will never be accepted by this node."""


# The outcomes, as stored, that only a replacement with higher fees gets past.
UNDERPRICED_SENDS: Final = frozenset(
    {SendOutcome.UNDERPRICED.value, SendOutcome.REPLACEMENT_UNDERPRICED.value}
)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one send, the transaction's hash (computed locally, so known even when
    the node refused it) and the node's error message, if any."""

    outcome: SendOutcome
    tx_hash: str
    message: str = ""


# Lowercase fragments of the messages of go-ethereum (core/txpool/errors.go, core/error.go),
# Erigon ("<ImportResult>: <DiscardReason>", txpoolcfg), Nethermind (geth's phrases now, its
# AcceptTxResult names before: OldNonce, FeeTooLow, ...), OpenEthereum and Anvil,
# checked in this order: "replacement transaction underpriced" must win over "underpriced".
_FRAGMENTS: tuple[tuple[SendOutcome, tuple[str, ...]], ...] = (
    (
        SendOutcome.ALREADY_KNOWN,
        (
            "already known",
            "alreadyknown",
            "known transaction",
            "already imported",
            "existing tx with same hash",
            "existing txn with same hash",
        ),
    ),
    (
        SendOutcome.NONCE_TOO_LOW,
        ("nonce too low", "nonce is too low", "oldnonce", "nonce_too_low"),
    ),
    (
        SendOutcome.REPLACEMENT_UNDERPRICED,
        (
            "replacement transaction underpriced",
            "could not replace existing tx",
            "replacementnotallowed",
            "gas price supplied is too low",
        ),
    ),
    (
        SendOutcome.UNDERPRICED,
        (
            "underpriced",
            "less than block base fee",
            "fee cap less than base fee",
            "feetoolow",
            "fee too low",
            "fee_too_low",
            "gas price too low",
        ),
    ),
    (
        SendOutcome.INSUFFICIENT_FUNDS,
        ("insufficient funds", "insufficientfunds", "insufficient balance"),
    ),
    (
        SendOutcome.TRANSIENT,
        (
            "txpool is full",
            "transaction pool is full",
            "sub-pool is full",
            "too many requests",
            "rate limit",
            "timeout",
            "timed out",
            "temporarily unavailable",
            "service unavailable",
        ),
    ),
)


# Each fragment must start a word: "unknown transaction type" is no "known transaction".
_PATTERNS: tuple[tuple[SendOutcome, re.Pattern[str]], ...] = tuple(
    (outcome, re.compile("|".join(rf"\b{re.escape(f)}" for f in fragments)))
    for outcome, fragments in _FRAGMENTS
)


def classify_send_error(message: str) -> SendOutcome:
    """The meaning of a node's error message for `eth_sendRawTransaction`."""
    text = message.lower()
    for outcome, pattern in _PATTERNS:
        if pattern.search(text):
            return outcome
    return SendOutcome.REJECTED


def send_raw_transaction(rpc: RpcClient, raw_transaction: bytes) -> SendResult:
    """Send stored signed bytes as they are; node errors come back classified, never raised."""
    tx_hash = "0x" + keccak(raw_transaction).hex()
    try:
        rpc.call("eth_sendRawTransaction", "0x" + raw_transaction.hex())
    except (NodeUnreachable, RpcProtocolError) as e:
        return SendResult(SendOutcome.TRANSIENT, tx_hash, str(e))
    except RpcResponseError as e:
        return _refused(tx_hash, e)
    return SendResult(SendOutcome.ACCEPTED, tx_hash)


def send_raw_transactions(rpc: RpcClient, raw_transactions: Sequence[bytes]) -> list[SendResult]:
    """Send stored signed bytes in one JSON-RPC batch, in their order (a sender's nonces
    ascending); each answer classified as `send_raw_transaction` does, never raised."""
    hashes = ["0x" + keccak(raw).hex() for raw in raw_transactions]
    calls = [RpcCall("eth_sendRawTransaction", ("0x" + raw.hex(),)) for raw in raw_transactions]
    try:
        answers = rpc.batch_settled(calls)
    except (NodeUnreachable, RpcProtocolError, RpcResponseError) as e:
        # No answer, or the batch itself refused: nothing is known of any of them.
        return [SendResult(SendOutcome.TRANSIENT, tx_hash, str(e)) for tx_hash in hashes]
    return [
        _refused(tx_hash, answer)
        if isinstance(answer, RpcResponseError)
        else SendResult(SendOutcome.ACCEPTED, tx_hash)
        for tx_hash, answer in zip(hashes, answers, strict=True)
    ]


def _refused(tx_hash: str, error: RpcResponseError) -> SendResult:
    detail = error.message if not isinstance(error.data, str) else f"{error.message}: {error.data}"
    return SendResult(classify_send_error(detail), tx_hash, detail)
