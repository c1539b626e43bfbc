"""The 64-byte BIP-39 master seed from which every custody key is derived."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import NoReturn

from eth_account.hdaccount.mnemonic import Mnemonic
from eth_account.types import Language
from eth_utils.exceptions import ValidationError

from custody.errors import InvalidMnemonic, InvalidSeed

SEED_LENGTH = 64
MNEMONIC_WORD_COUNTS = (12, 15, 18, 21, 24)


@dataclass(frozen=True, eq=False, repr=False)
class MasterSeed:
    """A BIP-39 seed (64 bytes); its repr and str are redacted and it refuses to be pickled."""

    secret: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) != SEED_LENGTH:
            raise InvalidSeed(f"a BIP-39 master seed is exactly {SEED_LENGTH} bytes")

    @classmethod
    def from_mnemonic(cls, mnemonic: str, passphrase: str = "") -> MasterSeed:
        """Check the mnemonic's words and checksum, then stretch it (with the optional
        BIP-39 passphrase) into the seed."""
        phrase = _checked_phrase(mnemonic)
        return cls(Mnemonic.to_seed(phrase, passphrase))

    def __repr__(self) -> str:
        return "MasterSeed(<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MasterSeed):
            return NotImplemented
        return hmac.compare_digest(self.secret, other.secret)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("MasterSeed cannot be pickled")


def generate_mnemonic(word_count: int = 24) -> str:
    """Draw a new English BIP-39 mnemonic from the OS random source."""
    if word_count not in MNEMONIC_WORD_COUNTS:
        raise ValueError(f"a BIP-39 mnemonic has one of {MNEMONIC_WORD_COUNTS} words")
    return Mnemonic(Language.ENGLISH).generate(word_count)


def is_valid_mnemonic(mnemonic: str) -> bool:
    """Whether the words form a BIP-39 mnemonic with a correct checksum."""
    try:
        _checked_phrase(mnemonic)
    except InvalidMnemonic:
        return False
    return True


def _checked_phrase(mnemonic: str) -> str:
    # eth-account's own validation errors quote the words, so none of them may escape
    # from here, not even as an exception's __context__.
    words = mnemonic.split()
    if len(words) not in MNEMONIC_WORD_COUNTS:
        raise InvalidMnemonic(
            f"a BIP-39 mnemonic has one of {MNEMONIC_WORD_COUNTS} words, not {len(words)}"
        )
    phrase = " ".join(words)
    language: Language | None
    try:
        language = Mnemonic.detect_language(phrase)
    except ValidationError:
        language = None
    if language is None:
        raise InvalidMnemonic("the mnemonic has words outside every single BIP-39 wordlist")
    if not Mnemonic(language).is_mnemonic_valid(phrase):
        raise InvalidMnemonic("the mnemonic's BIP-39 checksum does not match its words")
    return phrase
