"""An in-memory Signer for unit tests of the code that drives signing: no key, no curve."""

from __future__ import annotations

import json
from collections.abc import Sequence

from eth_hash.auto import keccak

from custody.errors import SignerUnavailable
from custody.signer import SignedTransaction, UnsignedTransaction


class FakeSigner:
    """Signs as `address` by encoding the fields, not by signing them: the bytes are
    deterministic and unique per transaction but no node accepts them.

    It records what it signed, and raises `SignerUnavailable` while `available` is False.
    """

    def __init__(self, address: str) -> None:
        self._address = address
        self.available = True
        self.signed: list[SignedTransaction] = []

    @property
    def address(self) -> str:
        return self._address

    def sign(self, transaction: UnsignedTransaction) -> SignedTransaction:
        return self.sign_batch([transaction])[0]

    def sign_batch(
        self, transactions: Sequence[UnsignedTransaction]
    ) -> tuple[SignedTransaction, ...]:
        if not self.available:
            raise SignerUnavailable("the fake signer is switched off")
        batch = tuple(self._encode(transaction) for transaction in transactions)
        self.signed.extend(batch)
        return batch

    def _encode(self, transaction: UnsignedTransaction) -> SignedTransaction:
        fields = {
            "from": self._address.lower(),
            "chain_id": transaction.chain_id,
            "nonce": transaction.nonce,
            "to": transaction.to.lower(),
            "value": transaction.value,
            "data": transaction.data.hex(),
            "gas": transaction.gas,
            "max_fee_per_gas": transaction.max_fee_per_gas,
            "max_priority_fee_per_gas": transaction.max_priority_fee_per_gas,
        }
        raw = b"fake-eip1559:" + json.dumps(fields, sort_keys=True).encode()
        return SignedTransaction(
            sender=self._address, raw_transaction=raw, transaction_hash=keccak(raw)
        )

    def __repr__(self) -> str:
        return f"FakeSigner({self._address})"
