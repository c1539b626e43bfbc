"""Signing of EIP-1559 transactions by custody keys.

Two ports: `Signer` signs for one address (a chain's hot wallet; a remote signer or a KMS
can take the place of `KeySigner`), `TransactionSigner` for any of a set of sender addresses
(deposit addresses being swept).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn, Protocol

from eth_account import Account

from custody.errors import InvalidPrivateKey, UnknownSender, UnsupportedTransaction
from custody.hd import DepositKeyTree, checksum_address, hot_wallet_key
from custody.keystore import load_seed
from custody.seed import MasterSeed

EIP1559_TYPE: Final = 2
_REQUIRED_FIELDS: Final = (
    "chainId",
    "nonce",
    "gas",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
)
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
_UINT256_LIMIT: Final = 2**256


@dataclass(frozen=True)
class SignedTransaction:
    """A signed transaction, ready for eth_sendRawTransaction."""

    sender: str
    raw_transaction: bytes
    transaction_hash: bytes


class UnsignedTransaction(Protocol):
    """The fields of an EIP-1559 transaction a `Signer` signs (`chains.TransactionRequest`
    has them): amounts in wei, `to` as hex, `data` as bytes."""

    @property
    def chain_id(self) -> int: ...
    @property
    def nonce(self) -> int: ...
    @property
    def to(self) -> str: ...
    @property
    def value(self) -> int: ...
    @property
    def data(self) -> bytes: ...
    @property
    def gas(self) -> int: ...
    @property
    def max_fee_per_gas(self) -> int: ...
    @property
    def max_priority_fee_per_gas(self) -> int: ...


class Signer(Protocol):
    """Signs EIP-1559 transactions as one address.

    Signing is deterministic (RFC 6979): the same transaction always yields the same bytes
    and hash. A signer that cannot sign now raises `SignerUnavailable`.
    """

    @property
    def address(self) -> str:
        """The EIP-55 checksummed address every transaction is signed as."""
        ...

    def sign(self, transaction: UnsignedTransaction) -> SignedTransaction:
        """Sign one transaction."""
        ...

    def sign_batch(
        self, transactions: Sequence[UnsignedTransaction]
    ) -> tuple[SignedTransaction, ...]:
        """Sign several transactions, all or none, in their order."""
        ...


class TransactionSigner(Protocol):
    """Signs EIP-1559 transactions on behalf of the sender addresses it holds keys for."""

    def sign_transaction(self, sender: str, transaction: Mapping[str, Any]) -> SignedTransaction:
        """Sign an EIP-1559 transaction dict (eth-account field names) as sender."""
        ...


class KeySigner:
    """A Signer holding one private key in this process; its repr is redacted."""

    __slots__ = ("_address", "_key")

    def __init__(self, private_key: bytes) -> None:
        self._address = _address_of_key(private_key)
        self._key = private_key

    @classmethod
    def hot_wallet(cls, seed: MasterSeed, *, account: int) -> KeySigner:
        """The signer of the hot wallet of a BIP-44 account (a chain) of the master seed."""
        return cls(hot_wallet_key(seed, account=account))

    @classmethod
    def hot_wallet_from_keystore(
        cls, path: str | os.PathLike[str], password: str, *, account: int
    ) -> KeySigner:
        """The hot wallet signer of an account of the seed in an encrypted keystore file."""
        return cls.hot_wallet(load_seed(path, password), account=account)

    @property
    def address(self) -> str:
        return self._address

    def sign(self, transaction: UnsignedTransaction) -> SignedTransaction:
        """Sign one EIP-1559 transaction as this signer's address."""
        _check_quantities(transaction)
        fields = {
            "type": EIP1559_TYPE,
            "chainId": transaction.chain_id,
            "nonce": transaction.nonce,
            "to": _checksummed_recipient(transaction.to),
            "value": transaction.value,
            "data": transaction.data,
            "gas": transaction.gas,
            "maxFeePerGas": transaction.max_fee_per_gas,
            "maxPriorityFeePerGas": transaction.max_priority_fee_per_gas,
        }
        return _sign(self._address, self._key, fields)

    def sign_batch(
        self, transactions: Sequence[UnsignedTransaction]
    ) -> tuple[SignedTransaction, ...]:
        """Sign several transactions in their order; the first refusal raises."""
        return tuple(self.sign(transaction) for transaction in transactions)

    def __repr__(self) -> str:
        return f"KeySigner({self._address}, <redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("KeySigner cannot be pickled")


class LocalSigner:
    """A TransactionSigner holding private keys in this process; its repr is redacted."""

    __slots__ = ("_keys",)

    def __init__(self, private_keys: Iterable[bytes]) -> None:
        self._keys: dict[str, tuple[str, bytes]] = {}
        for key in private_keys:
            address = _address_of_key(key)
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
        return _sign(address, key, _eip1559_fields(address, transaction))

    def __repr__(self) -> str:
        return f"LocalSigner({len(self._keys)} keys, <redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("LocalSigner cannot be pickled")


def _address_of_key(private_key: bytes) -> str:
    # Parsing errors of eth-account / eth-keys may quote the key: none of them escapes.
    try:
        address: str = Account.from_key(private_key).address
    except Exception:
        raise InvalidPrivateKey("not a secp256k1 private key") from None
    return address


def _sign(address: str, key: bytes, unsigned: Mapping[str, Any]) -> SignedTransaction:
    try:
        signed = Account.sign_transaction(unsigned, key)
    except (TypeError, ValueError) as e:
        # eth-account quotes the offending transaction fields here, never the key.
        raise UnsupportedTransaction(f"not a signable EIP-1559 transaction: {e}") from None
    return SignedTransaction(
        sender=address,
        raw_transaction=bytes(signed.raw_transaction),
        transaction_hash=bytes(signed.hash),
    )


def _check_quantities(transaction: UnsignedTransaction) -> None:
    quantities = {
        "chain_id": transaction.chain_id,
        "nonce": transaction.nonce,
        "value": transaction.value,
        "gas": transaction.gas,
        "max_fee_per_gas": transaction.max_fee_per_gas,
        "max_priority_fee_per_gas": transaction.max_priority_fee_per_gas,
    }
    for name, quantity in quantities.items():
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise UnsupportedTransaction(f"{name} must be an integer")
        if not 0 <= quantity < _UINT256_LIMIT:
            raise UnsupportedTransaction(f"{name} must be within 0..2**256-1")
    if not isinstance(transaction.data, bytes):
        raise UnsupportedTransaction("data must be bytes")


def _checksummed_recipient(to: str) -> str:
    body = to[2:] if to.startswith("0x") else ""
    if len(body) != 40 or not _HEX_DIGITS.issuperset(body):
        raise UnsupportedTransaction("the recipient is not a 20-byte hex address")
    checksummed = checksum_address(bytes.fromhex(body))
    if body not in (body.lower(), body.upper()) and to != checksummed:
        raise UnsupportedTransaction("the recipient's mixed-case EIP-55 checksum is wrong")
    return checksummed


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
