"""Custody adapter: HD deposit and hot wallet addresses, the encrypted master seed, signers.

It imports no other part of the service and touches no database or network.
"""

from custody.errors import (
    CustodyError,
    IndexOutOfRange,
    InvalidChildKey,
    InvalidExtendedKey,
    InvalidMnemonic,
    InvalidPrivateKey,
    InvalidSeed,
    KeystoreError,
    KeystoreExists,
    MalformedKeystore,
    SignerUnavailable,
    UnknownSender,
    UnsupportedTransaction,
    WrongPassword,
)
from custody.fake import FakeSigner
from custody.hd import (
    AddressDeriver,
    DepositKeyTree,
    ExtendedPrivateKey,
    ExtendedPublicKey,
    XpubAddressDeriver,
    checksum_address,
    deposit_path,
    hot_wallet_key,
    hot_wallet_path,
)
from custody.keystore import create_keystore, load_seed
from custody.seed import MasterSeed, generate_mnemonic, is_valid_mnemonic
from custody.signer import (
    KeySigner,
    LocalSigner,
    SignedTransaction,
    Signer,
    TransactionSigner,
    UnsignedTransaction,
)

__all__ = [
    "AddressDeriver",
    "CustodyError",
    "DepositKeyTree",
    "ExtendedPrivateKey",
    "ExtendedPublicKey",
    "FakeSigner",
    "IndexOutOfRange",
    "InvalidChildKey",
    "InvalidExtendedKey",
    "InvalidMnemonic",
    "InvalidPrivateKey",
    "InvalidSeed",
    "KeySigner",
    "KeystoreError",
    "KeystoreExists",
    "LocalSigner",
    "MalformedKeystore",
    "MasterSeed",
    "SignedTransaction",
    "Signer",
    "SignerUnavailable",
    "TransactionSigner",
    "UnknownSender",
    "UnsignedTransaction",
    "UnsupportedTransaction",
    "WrongPassword",
    "XpubAddressDeriver",
    "checksum_address",
    "create_keystore",
    "deposit_path",
    "generate_mnemonic",
    "hot_wallet_key",
    "hot_wallet_path",
    "is_valid_mnemonic",
    "load_seed",
]
