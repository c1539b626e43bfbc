"""BIP-32/BIP-44 derivation of Ethereum deposit addresses, hot wallets and their signing keys.

Layout: one deposit address per wallet index at m/44'/60'/{account}'/0/{index}, and the
account's hot wallet (the sender of withdrawals) at m/44'/60'/{account}'/1/0. The
BIP-44 account level tells chains apart: the caller gives each chain its own account
number (account 0 is the path every Ethereum wallet uses by default), so each chain has
its own address space and its own account-level xpub, which is all an address-issuing
process needs. `custody` knows nothing of chains; the chain-to-account mapping is the
caller's and must never change once addresses have been handed out.

The hot wallet sits on BIP-44's internal ("change") branch, which holds addresses that are
never handed out: no deposit index can ever collide with it, the deposit watcher never
mistakes it for a user's address, and it still follows from the account xpub, so a process
without keys knows each chain's hot wallet address.

The hardened prefix m/44'/60'/{account}'/0 is derived once; each index then costs one
HMAC-SHA512 and one secp256k1 tweak-add (CKDpub for addresses, CKDpriv for keys).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Final, NoReturn, Protocol

from coincurve import PublicKey
from Crypto.Hash import RIPEMD160
from eth_hash.auto import keccak

from custody.errors import (
    IndexOutOfRange,
    InvalidChildKey,
    InvalidExtendedKey,
    InvalidSeed,
)
from custody.seed import MasterSeed

HARDENED: Final = 0x8000_0000
MAX_INDEX: Final = HARDENED - 1
SECP256K1_ORDER: Final = 0xFFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFE_BAAEDCE6_AF48A03B_BFD25E8C_D0364141
BIP44_PURPOSE: Final = 44
ETHEREUM_COIN_TYPE: Final = 60
EXTERNAL_CHAIN: Final = 0
INTERNAL_CHAIN: Final = 1
HOT_WALLET_INDEX: Final = 0
ACCOUNT_DEPTH: Final = 3

_XPUB_VERSION: Final = bytes.fromhex("0488b21e")
_SERIALIZED_LENGTH: Final = 78
_MASTER_HMAC_KEY: Final = b"Bitcoin seed"
_BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_VALUES: Final = {char: value for value, char in enumerate(_BASE58_ALPHABET)}


def deposit_path(account: int, index: int) -> str:
    """The BIP-44 path of a deposit address, e.g. m/44'/60'/0'/0/7."""
    return _bip44_path(account, EXTERNAL_CHAIN, index)


def hot_wallet_path(account: int) -> str:
    """The BIP-44 path of the account's hot wallet, e.g. m/44'/60'/1'/1/0."""
    return _bip44_path(account, INTERNAL_CHAIN, HOT_WALLET_INDEX)


def hot_wallet_key(seed: MasterSeed, *, account: int) -> bytes:
    """The 32-byte private key of the account's hot wallet."""
    key = _account_key(seed, account).derive((INTERNAL_CHAIN, HOT_WALLET_INDEX))
    return key.secret.to_bytes(32, "big")


def _bip44_path(account: int, change: int, index: int) -> str:
    _check_index(account, "account")
    _check_index(index, "index")
    return f"m/{BIP44_PURPOSE}'/{ETHEREUM_COIN_TYPE}'/{account}'/{change}/{index}"


def _account_key(seed: MasterSeed, account: int) -> ExtendedPrivateKey:
    """m/44'/60'/{account}'"""
    _check_index(account, "account")
    return ExtendedPrivateKey.from_seed(seed.secret).derive(
        (BIP44_PURPOSE | HARDENED, ETHEREUM_COIN_TYPE | HARDENED, account | HARDENED)
    )


class AddressDeriver(Protocol):
    """Gives the deposit address of a wallet index without needing any private key."""

    def address(self, index: int) -> str:
        """The EIP-55 checksummed address at the given wallet index."""
        ...


@dataclass(frozen=True)
class ExtendedPublicKey:
    """A BIP-32 extended public key: a compressed secp256k1 point, its chain code and
    where it sits in the tree."""

    public_key: bytes
    chain_code: bytes
    depth: int = 0
    parent_fingerprint: bytes = bytes(4)
    child_number: int = 0

    def __post_init__(self) -> None:
        if len(self.chain_code) != 32 or len(self.parent_fingerprint) != 4:
            raise InvalidExtendedKey("chain code must be 32 bytes, parent fingerprint 4")
        if not 0 <= self.depth <= 255 or not 0 <= self.child_number < 2**32:
            raise InvalidExtendedKey("depth or child number out of range")
        if len(self.public_key) != 33 or self.public_key[0] not in (2, 3):
            raise InvalidExtendedKey("public key must be a 33-byte compressed point")
        try:
            PublicKey(self.public_key)
        except ValueError:
            raise InvalidExtendedKey("public key is not a point on secp256k1") from None

    @cached_property
    def _point(self) -> PublicKey:
        return PublicKey(self.public_key)

    @property
    def fingerprint(self) -> bytes:
        """The first 4 bytes of HASH160 of the public key, as children record their parent."""
        return _hash160(self.public_key)[:4]

    def child(self, index: int) -> ExtendedPublicKey:
        """CKDpub: the non-hardened child at the given index."""
        _check_index(index, "index")
        il, chain_code = _child_hmac(self.chain_code, self.public_key, index)
        return ExtendedPublicKey(
            public_key=_public_child(self._point, il, index).format(compressed=True),
            chain_code=chain_code,
            depth=self.depth + 1,
            parent_fingerprint=self.fingerprint,
            child_number=index,
        )

    def to_xpub(self) -> str:
        """The standard base58check `xpub...` serialization (mainnet version bytes)."""
        payload = (
            _XPUB_VERSION
            + bytes([self.depth])
            + self.parent_fingerprint
            + self.child_number.to_bytes(4, "big")
            + self.chain_code
            + self.public_key
        )
        return _base58check_encode(payload)

    @classmethod
    def from_xpub(cls, xpub: str) -> ExtendedPublicKey:
        """Parse a base58check `xpub...` string."""
        payload = _base58check_decode(xpub)
        if len(payload) != _SERIALIZED_LENGTH or payload[:4] != _XPUB_VERSION:
            raise InvalidExtendedKey("not a mainnet BIP-32 extended public key (xpub)")
        depth = payload[4]
        parent_fingerprint = payload[5:9]
        child_number = int.from_bytes(payload[9:13], "big")
        if depth == 0 and (parent_fingerprint != bytes(4) or child_number != 0):
            raise InvalidExtendedKey("a depth-0 xpub must have no parent and child number 0")
        return cls(
            public_key=payload[45:78],
            chain_code=payload[13:45],
            depth=depth,
            parent_fingerprint=parent_fingerprint,
            child_number=child_number,
        )

    def __str__(self) -> str:
        return self.to_xpub()


@dataclass(frozen=True, eq=False, repr=False)
class ExtendedPrivateKey:
    """A BIP-32 extended private key; its repr is redacted."""

    secret: int
    chain_code: bytes
    depth: int = 0
    parent_fingerprint: bytes = bytes(4)
    child_number: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.secret < SECP256K1_ORDER:
            raise InvalidSeed("extended private key scalar out of range")

    @classmethod
    def from_seed(cls, seed: bytes) -> ExtendedPrivateKey:
        """The BIP-32 master key of a 16- to 64-byte seed."""
        if not 16 <= len(seed) <= 64:
            raise InvalidSeed("a BIP-32 seed is 16 to 64 bytes")
        digest = hmac.digest(_MASTER_HMAC_KEY, seed, "sha512")
        secret = int.from_bytes(digest[:32], "big")
        if not 0 < secret < SECP256K1_ORDER:
            raise InvalidSeed("this seed yields no valid BIP-32 master key")
        return cls(secret=secret, chain_code=digest[32:])

    @cached_property
    def extended_public_key(self) -> ExtendedPublicKey:
        """The matching extended public key (BIP-32 'neuter')."""
        return ExtendedPublicKey(
            public_key=PublicKey.from_valid_secret(self.secret.to_bytes(32, "big")).format(),
            chain_code=self.chain_code,
            depth=self.depth,
            parent_fingerprint=self.parent_fingerprint,
            child_number=self.child_number,
        )

    def child(self, child_number: int) -> ExtendedPrivateKey:
        """CKDpriv: the child at child_number; numbers from HARDENED up are hardened."""
        if not 0 <= child_number < 2**32:
            raise IndexOutOfRange("a BIP-32 child number is 0..2**32-1")
        if child_number >= HARDENED:
            data = b"\x00" + self.secret.to_bytes(32, "big")
        else:
            data = self.extended_public_key.public_key
        il, chain_code = _child_hmac(self.chain_code, data, child_number)
        return ExtendedPrivateKey(
            secret=_private_child(self.secret, il, child_number),
            chain_code=chain_code,
            depth=self.depth + 1,
            parent_fingerprint=self.extended_public_key.fingerprint,
            child_number=child_number,
        )

    def derive(self, child_numbers: Iterable[int]) -> ExtendedPrivateKey:
        """Follow a path of child numbers (hardened ones offset by HARDENED)."""
        key = self
        for child_number in child_numbers:
            key = key.child(child_number)
        return key

    def __repr__(self) -> str:
        return f"ExtendedPrivateKey(depth={self.depth}, <redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("ExtendedPrivateKey cannot be pickled")


class XpubAddressDeriver:
    """Deposit addresses from an account-level xpub (m/44'/60'/{account}'), holding no
    private key: what an address-issuing API process should be given."""

    __slots__ = ("_account_key", "_chain_code", "_external_point", "_external_public_key")

    def __init__(self, account_xpub: ExtendedPublicKey | str) -> None:
        key = (
            ExtendedPublicKey.from_xpub(account_xpub)
            if isinstance(account_xpub, str)
            else account_xpub
        )
        if key.depth != ACCOUNT_DEPTH or key.child_number < HARDENED:
            raise InvalidExtendedKey(
                "expected a BIP-44 account-level xpub (depth 3, hardened child number)"
            )
        external = key.child(EXTERNAL_CHAIN)
        self._account_key = key
        self._chain_code = external.chain_code
        self._external_public_key = external.public_key
        self._external_point = PublicKey(external.public_key)

    @property
    def account(self) -> int:
        """The BIP-44 account number this xpub was derived at."""
        return self._account_key.child_number - HARDENED

    @property
    def account_xpub(self) -> str:
        """The account-level xpub this deriver was built from."""
        return self._account_key.to_xpub()

    def path(self, index: int) -> str:
        """The BIP-44 path of the deposit address at the given wallet index."""
        return deposit_path(self.account, index)

    def address(self, index: int) -> str:
        """The EIP-55 checksummed deposit address at the given wallet index."""
        _check_index(index, "index")
        il, _ = _child_hmac(self._chain_code, self._external_public_key, index)
        return _address_of(_public_child(self._external_point, il, index))

    @property
    def hot_wallet_address(self) -> str:
        """The EIP-55 checksummed address of the account's hot wallet."""
        key = self._account_key.child(INTERNAL_CHAIN).child(HOT_WALLET_INDEX)
        return _address_of(PublicKey(key.public_key))

    def __repr__(self) -> str:
        return f"XpubAddressDeriver(account={self.account})"


class DepositKeyTree:
    """Deposit addresses and their private keys for one BIP-44 account (one chain) of
    a master seed; its repr is redacted."""

    __slots__ = ("_addresses", "_external")

    def __init__(self, seed: MasterSeed, *, account: int) -> None:
        account_key = _account_key(seed, account)
        self._external = account_key.child(EXTERNAL_CHAIN)
        self._addresses = XpubAddressDeriver(account_key.extended_public_key)

    @property
    def account(self) -> int:
        """The BIP-44 account number (the chain's slot) of this tree."""
        return self._addresses.account

    @property
    def account_xpub(self) -> str:
        """The account-level xpub: enough to derive every address here, no key."""
        return self._addresses.account_xpub

    def address_deriver(self) -> XpubAddressDeriver:
        """An address deriver for this account that holds no private key."""
        return self._addresses

    def path(self, index: int) -> str:
        """The BIP-44 path of the deposit address at the given wallet index."""
        return self._addresses.path(index)

    def address(self, index: int) -> str:
        """The EIP-55 checksummed deposit address at the given wallet index."""
        return self._addresses.address(index)

    def private_key(self, index: int) -> bytes:
        """The 32-byte private key of the deposit address at the given wallet index."""
        _check_index(index, "index")
        external = self._external
        il, _ = _child_hmac(external.chain_code, external.extended_public_key.public_key, index)
        return _private_child(external.secret, il, index).to_bytes(32, "big")

    def __repr__(self) -> str:
        return f"DepositKeyTree(account={self.account}, <redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("DepositKeyTree cannot be pickled")


def checksum_address(address: bytes) -> str:
    """EIP-55 mixed-case hex of a 20-byte address."""
    hex_address = address.hex()
    digest = keccak(hex_address.encode("ascii")).hex()
    return "0x" + "".join(
        char.upper() if nibble in "89abcdef" else char
        for char, nibble in zip(hex_address, digest, strict=False)
    )


def _address_of(public_key: PublicKey) -> str:
    return checksum_address(keccak(public_key.format(compressed=False)[1:])[-20:])


def _check_index(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INDEX:
        raise IndexOutOfRange(f"{name} must be an int in 0..{MAX_INDEX}")


def _child_hmac(chain_code: bytes, data: bytes, child_number: int) -> tuple[bytes, bytes]:
    """I = HMAC-SHA512(c_par, data || ser32(i)), split into (I_L, I_R); I_L >= n is invalid."""
    digest = hmac.digest(chain_code, data + child_number.to_bytes(4, "big"), "sha512")
    return _checked_tweak(digest[:32], child_number), digest[32:]


def _checked_tweak(il: bytes, child_number: int) -> bytes:
    if int.from_bytes(il, "big") >= SECP256K1_ORDER:
        raise InvalidChildKey(child_number)
    return il


def _public_child(parent: PublicKey, il: bytes, child_number: int) -> PublicKey:
    """K_child = I_L*G + K_par; the point at infinity is invalid."""
    try:
        return parent.add(il)
    except ValueError:
        raise InvalidChildKey(child_number) from None


def _private_child(parent_secret: int, il: bytes, child_number: int) -> int:
    """k_child = I_L + k_par (mod n); zero is invalid."""
    secret = (int.from_bytes(il, "big") + parent_secret) % SECP256K1_ORDER
    if secret == 0:
        raise InvalidChildKey(child_number)
    return secret


def _hash160(data: bytes) -> bytes:
    return RIPEMD160.new(hashlib.sha256(data).digest()).digest()


def _base58check_encode(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_BASE58_ALPHABET[remainder])
    leading_zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * leading_zeros + "".join(reversed(digits))


def _base58check_decode(text: str) -> bytes:
    number = 0
    for char in text:
        value = _BASE58_VALUES.get(char)
        if value is None:
            raise InvalidExtendedKey("not base58: unexpected character")
        number = number * 58 + value
    leading_zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    data = bytes(leading_zeros) + body
    payload, checksum = data[:-4], data[-4:]
    if len(data) < 4 or (hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum):
        raise InvalidExtendedKey("base58check checksum mismatch")
    return payload
