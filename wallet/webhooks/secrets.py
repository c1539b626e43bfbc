"""Signing secrets of webhook endpoints: made here, shown once, kept only encrypted.

A secret is 32 random bytes, shown to the app as `whsec_<base64>` (the Standard Webhooks
form). At rest it is sealed with AES-256-GCM under a key from the settings, with the endpoint
id as associated data, so a sealed secret copied onto another endpoint's row does not open.
Hashing is not an option: the worker needs the secret itself to sign each delivery.
"""

import base64
import binascii
import secrets
from typing import Final

from Crypto.Cipher import AES

from wallet.kept_secrets import kept_secret
from wallet.settings import Settings

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the prefix of the form, not a secret
SECRET_BYTES: Final = 32
KEY_BYTES: Final = 32
KEY_FILE_NAME: Final = "webhook-secrets.key"
_FORMAT_VERSION: Final = b"\x01"
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16


class SecretUnreadable(Exception):
    """A sealed secret that does not open: a different key, or a damaged or moved row."""


class SecretBox:
    """Seals and opens endpoint signing secrets under one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a webhook secrets key is {KEY_BYTES} bytes, not {len(key)}")
        self._key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> "SecretBox":
        """The configured key, or (single machine) the one kept in the data directory."""
        if settings.webhook_secrets_key is not None:
            return cls(parse_key(settings.webhook_secrets_key.get_secret_value()))
        return cls(parse_key(kept_secret(settings.data_dir / KEY_FILE_NAME, new_key)))

    def seal(self, secret: bytes, endpoint_id: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        cipher = AES.new(self._key, AES.MODE_GCM, nonce=nonce)
        cipher.update(_FORMAT_VERSION + endpoint_id.encode())
        ciphertext, tag = cipher.encrypt_and_digest(secret)
        return _FORMAT_VERSION + nonce + ciphertext + tag

    def open(self, sealed: bytes, endpoint_id: str) -> bytes:
        version, body = sealed[:1], sealed[1:]
        if version != _FORMAT_VERSION or len(body) < _NONCE_BYTES + _TAG_BYTES:
            raise SecretUnreadable("not a sealed webhook secret")
        nonce, ciphertext, tag = (
            body[:_NONCE_BYTES],
            body[_NONCE_BYTES:-_TAG_BYTES],
            body[-_TAG_BYTES:],
        )
        cipher = AES.new(self._key, AES.MODE_GCM, nonce=nonce)
        cipher.update(version + endpoint_id.encode())
        try:
            return cipher.decrypt_and_verify(ciphertext, tag)
        except ValueError as error:
            raise SecretUnreadable(
                "the webhook secret does not open with this key (is WALLET_WEBHOOK_SECRETS_KEY "
                "the same in every process?)"
            ) from error


def new_signing_secret() -> tuple[bytes, str]:
    """A fresh secret: its bytes, and the `whsec_...` form shown to the app once."""
    raw = secrets.token_bytes(SECRET_BYTES)
    return raw, display_secret(raw)


def display_secret(raw: bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def new_key() -> str:
    """A new secrets key in the form `WALLET_WEBHOOK_SECRETS_KEY` takes."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_key(encoded: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error as error:
        raise ValueError("the webhook secrets key must be base64") from error
    if len(key) != KEY_BYTES:
        raise ValueError(f"the webhook secrets key must be {KEY_BYTES} bytes in base64")
    return key
