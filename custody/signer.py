"""Signing of EIP-1559 transactions by the custody keys of known sender addresses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn, Protocol

from eth_account import Account

from custody.errors import UnknownSender, UnsupportedTransaction
from custody.hd import DepositKeyTree

EIP1559_TYPE: Final = 2
_REQUIRED_FIELDS: Final = (
    "chainId",
    "nonce",
    "gas",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
)


@dataclass(frozen=True)
class SignedTransaction:
    """A signed transaction, ready for eth_sendRawTransaction."""

    sender: str
    raw_transaction: bytes
    transaction_hash: bytes


class TransactionSigner(Protocol):
    """Signs EIP-1559 transactions on behalf of the sender addresses it holds keys for."""

    def sign_transaction(self, sender: str, transaction: Mapping[str, Any]) -> SignedTransaction:
        """Sign an EIP-1559 transaction dict (eth-account field names) as sender."""
        ...


class LocalSigner:
    """A TransactionSigner holding private keys in this process; its repr is redacted."""

    __slots__ = ("_keys",)

    def __init__(self, private_keys: Iterable[bytes]) -> None:
        self._keys: dict[str, tuple[str, bytes]] = {}
        for key in private_keys:
            address = Account.from_key(key).address
            self._keys[address.lower()] = (address, key)

    @classmethod
    def from_tree(cls, tree: DepositKeyTree, indexes: Iterable[int]) -> LocalSigner:
        """A signer for the deposit addresses of these wallet indexes in the tree."""
        return cls(tree.private_key(index) for index in indexes)

    @property
    def senders(self) -> frozenset[str]:
        """The checksummed addresses this signer can sign for."""
        return frozenset(address for address, _ in self._keys.values())

    def sign_transaction(self, sender: str, transaction: Mapping[str, Any]) -> SignedTransaction:
        """Sign an EIP-1559 transaction dict (eth-account field names) as sender."""
        entry = self._keys.get(sender.lower())
        if entry is None:
            raise UnknownSender(f"no custody key for sender {sender}")
        address, key = entry
        unsigned = _eip1559_fields(address, transaction)
        signed = Account.sign_transaction(unsigned, key)
        return SignedTransaction(
            sender=address,
            raw_transaction=bytes(signed.raw_transaction),
            transaction_hash=bytes(signed.hash),
        )

    def __repr__(self) -> str:
        return f"LocalSigner({len(self._keys)} keys, <redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("LocalSigner cannot be pickled")


def _eip1559_fields(sender: str, transaction: Mapping[str, Any]) -> dict[str, Any]:
    missing = [name for name in _REQUIRED_FIELDS if name not in transaction]
    if missing:
        raise UnsupportedTransaction(f"an EIP-1559 transaction needs {', '.join(missing)}")
    if "gasPrice" in transaction:
        raise UnsupportedTransaction("gasPrice belongs to legacy transactions, not EIP-1559")
    kind = transaction.get("type", EIP1559_TYPE)
    if kind not in (EIP1559_TYPE, hex(EIP1559_TYPE)):
        raise UnsupportedTransaction(f"transaction type {kind!r} is not EIP-1559 (2)")
    declared_sender = transaction.get("from")
    if declared_sender is not None and str(declared_sender).lower() != sender.lower():
        raise UnsupportedTransaction("the transaction's from field names another sender")
    unsigned = {name: value for name, value in transaction.items() if name != "from"}
    unsigned["type"] = EIP1559_TYPE
    return unsigned
