"""Typed errors raised by the custody adapter; their messages never carry secrets."""


class CustodyError(Exception):
    """Base class of every error raised by `custody`."""


class InvalidMnemonic(CustodyError, ValueError):
    """The words are not a BIP-39 mnemonic: unknown words, wrong word count or bad checksum."""


class InvalidSeed(CustodyError, ValueError):
    """The bytes cannot serve as a BIP-32 master seed."""


class InvalidExtendedKey(CustodyError, ValueError):
    """An extended public key is malformed or does not sit where it is expected in the tree."""


class IndexOutOfRange(CustodyError, ValueError):
    """A wallet or account index is outside 0..2**31-1, the non-hardened BIP-32 range."""


class InvalidChildKey(CustodyError):
    """BIP-32 yields no valid key at this child index (probability below 2**-127).

    The caller should give up on this index and allocate the next one.
    """

    def __init__(self, index: int) -> None:
        super().__init__(
            f"BIP-32 child index {index} yields an invalid key; allocate the next index instead"
        )
        self.index = index


class KeystoreError(CustodyError):
    """Base class of keystore file errors."""


class WrongPassword(KeystoreError):
    """The password does not decrypt the keystore (its MAC does not match)."""


class MalformedKeystore(KeystoreError):
    """The file is not a custody seed keystore, or it is damaged."""


class KeystoreExists(KeystoreError, FileExistsError):
    """A keystore already exists at the path and overwriting was not asked for."""


class UnknownSender(CustodyError, LookupError):
    """The signer holds no key for the requested sender address."""


class UnsupportedTransaction(CustodyError, ValueError):
    """The transaction dict is not a signable EIP-1559 transaction for this sender."""


class InvalidPrivateKey(CustodyError, ValueError):
    """The bytes are not a secp256k1 private key."""


class SignerUnavailable(CustodyError):
    """The signer (a remote service, a KMS) could not sign now; nothing was signed.

    Retrying later is safe: signing the same transaction again yields the same transaction.
    """
