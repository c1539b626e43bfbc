"""Custody adapter: HD deposit addresses, the encrypted master seed and transaction signing.

It imports no other part of the service and touches no database or network.
"""

from custody.errors import (
    CustodyError,
    IndexOutOfRange,
    InvalidChildKey,
    InvalidExtendedKey,
    InvalidMnemonic,
    InvalidSeed,
    KeystoreError,
    KeystoreExists,
    MalformedKeystore,
    UnknownSender,
    UnsupportedTransaction,
    WrongPassword,
)
from custody.hd import (
    AddressDeriver,
    DepositKeyTree,
    ExtendedPrivateKey,
    ExtendedPublicKey,
    XpubAddressDeriver,
    checksum_address,
    deposit_path,
)
from custody.keystore import create_keystore, load_seed
from custody.seed import MasterSeed, generate_mnemonic, is_valid_mnemonic
from custody.signer import LocalSigner, SignedTransaction, TransactionSigner

__all__ = [
    "AddressDeriver",
    "CustodyError",
    "DepositKeyTree",
    "ExtendedPrivateKey",
    "ExtendedPublicKey",
    "IndexOutOfRange",
    "InvalidChildKey",
    "InvalidExtendedKey",
    "InvalidMnemonic",
    "InvalidSeed",
    "KeystoreError",
    "KeystoreExists",
    "LocalSigner",
    "MalformedKeystore",
    "MasterSeed",
    "SignedTransaction",
    "TransactionSigner",
    "UnknownSender",
    "UnsupportedTransaction",
    "WrongPassword",
    "XpubAddressDeriver",
    "checksum_address",
    "create_keystore",
    "deposit_path",
    "generate_mnemonic",
    "is_valid_mnemonic",
    "load_seed",
]
