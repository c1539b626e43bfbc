"""Password-encrypted file holding the master seed, in the Web3 Secret Storage (keystore
v3) format with scrypt.

eth_keyfile's `create_keyfile_json` only accepts a 32-byte secp256k1 private key (it
rejects a 64-byte seed, and the 16-byte entropy of a 12-word mnemonic too), so the v3
document is built here with the same scheme (scrypt, AES-128-CTR, keccak-256 MAC) and
read back with eth_keyfile's `decode_keyfile_json`, which takes any plaintext length.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
import uuid
from pathlib import Path
from typing import Any, Final

from eth_hash.auto import keccak
from eth_keyfile.exceptions import EthKeyfileValueError
from eth_keyfile.keyfile import decode_keyfile_json, encrypt_aes_ctr

from custody.errors import KeystoreExists, MalformedKeystore, WrongPassword
from custody.seed import SEED_LENGTH, MasterSeed

DEFAULT_SCRYPT_N: Final = 2**18
MAX_SCRYPT_N: Final = 2**20
KEYSTORE_MODE: Final = 0o600

_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_DKLEN: Final = 32
_SALT_LENGTH: Final = 32
_IV_LENGTH: Final = 16
_MARKER_FIELD: Final = "custody"
_MARKER: Final = {"content": "bip39-seed", "version": 1}


def create_keystore(
    path: str | os.PathLike[str],
    mnemonic_or_seed: str | MasterSeed,
    password: str,
    *,
    scrypt_n: int = DEFAULT_SCRYPT_N,
    overwrite: bool = False,
) -> Path:
    """Encrypt the seed (a mnemonic is first checked and stretched with no passphrase)
    under the password and write it atomically to path with mode 0600."""
    seed = (
        MasterSeed.from_mnemonic(mnemonic_or_seed)
        if isinstance(mnemonic_or_seed, str)
        else mnemonic_or_seed
    )
    if not password:
        raise ValueError("the keystore password must not be empty")
    if scrypt_n < 2 or scrypt_n > MAX_SCRYPT_N or scrypt_n & (scrypt_n - 1):
        raise ValueError(f"scrypt_n must be a power of two in 2..{MAX_SCRYPT_N}")
    document = _encrypt(seed.secret, password.encode("utf-8"), scrypt_n)
    target = Path(path)
    _write_private_file(target, json.dumps(document, indent=2) + "\n", overwrite=overwrite)
    return target


def load_seed(path: str | os.PathLike[str], password: str) -> MasterSeed:
    """Decrypt the master seed from a keystore written by `create_keystore`."""
    try:
        document = json.loads(Path(path).read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedKeystore("the keystore is not a JSON document") from None
    _check_shape(document)
    try:
        secret = decode_keyfile_json(document, password.encode("utf-8"))
    except EthKeyfileValueError:
        # With the shape checked above, the MAC comparison is the one check left that fails.
        raise WrongPassword("the password does not decrypt this keystore") from None
    except (KeyError, TypeError, ValueError):
        raise MalformedKeystore("the keystore's crypto section cannot be decoded") from None
    if len(secret) != SEED_LENGTH:
        raise MalformedKeystore(f"the keystore holds a {len(secret)}-byte secret, not a seed")
    return MasterSeed(secret)


def _encrypt(secret: bytes, password: bytes, scrypt_n: int) -> dict[str, Any]:
    salt = secrets.token_bytes(_SALT_LENGTH)
    iv = secrets.token_bytes(_IV_LENGTH)
    derived_key = hashlib.scrypt(
        password,
        salt=salt,
        n=scrypt_n,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        dklen=_DKLEN,
        maxmem=256 * _SCRYPT_R * scrypt_n,
    )
    ciphertext = encrypt_aes_ctr(secret, derived_key[:16], int.from_bytes(iv, "big"))
    mac = keccak(derived_key[16:32] + ciphertext)
    return {
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": iv.hex()},
            "ciphertext": ciphertext.hex(),
            "kdf": "scrypt",
            "kdfparams": {
                "dklen": _DKLEN,
                "n": scrypt_n,
                "r": _SCRYPT_R,
                "p": _SCRYPT_P,
                "salt": salt.hex(),
            },
            "mac": mac.hex(),
        },
        "id": str(uuid.uuid4()),
        "version": 3,
        _MARKER_FIELD: _MARKER,
    }


def _check_shape(document: object) -> None:
    """Reject anything but a scrypt/AES-128-CTR v3 seed keystore, and cap scrypt's cost
    so a hostile file cannot exhaust memory."""
    if not isinstance(document, dict) or document.get("version") != 3:
        raise MalformedKeystore("not a version 3 keystore")
    if document.get(_MARKER_FIELD) != _MARKER:
        raise MalformedKeystore("not a custody seed keystore (an account keystore?)")
    crypto = document.get("crypto")
    if not isinstance(crypto, dict):
        raise MalformedKeystore("the keystore has no crypto section")
    if crypto.get("kdf") != "scrypt" or crypto.get("cipher") != "aes-128-ctr":
        raise MalformedKeystore("the keystore must use scrypt and aes-128-ctr")
    params = crypto.get("kdfparams")
    cipher_params = crypto.get("cipherparams")
    if not isinstance(params, dict) or not isinstance(cipher_params, dict):
        raise MalformedKeystore("the keystore has no scrypt or cipher parameters")
    n, r, p, dklen = (_int_field(params, name) for name in ("n", "r", "p", "dklen"))
    if not (2 <= n <= MAX_SCRYPT_N and 1 <= r <= 32 and 1 <= p <= 16 and dklen == _DKLEN):
        raise MalformedKeystore("scrypt parameters are out of the accepted range")
    hex_fields = {
        "salt": params.get("salt"),
        "iv": cipher_params.get("iv"),
        "ciphertext": crypto.get("ciphertext"),
        "mac": crypto.get("mac"),
    }
    for name, value in hex_fields.items():
        if not isinstance(value, str) or not _is_hex(value):
            raise MalformedKeystore(f"the keystore's {name} is not hex")


def _int_field(params: dict[str, Any], name: str) -> int:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedKeystore(f"the scrypt parameter {name} is not an integer")
    return value


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def _write_private_file(target: Path, text: str, *, overwrite: bool) -> None:
    """Write to a 0600 temporary file beside target, fsync it, then link or rename it
    into place so readers never see a partial file."""
    if not overwrite and target.exists():
        raise KeystoreExists(f"a keystore already exists at {target}")
    directory = target.parent
    descriptor, temporary_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=directory
    )
    temporary = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            # mkstemp already creates the file 0600; set it anyway, whatever the platform.
            os.fchmod(handle.fileno(), KEYSTORE_MODE)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, target)
        else:
            try:
                # link() fails if target appeared meanwhile, unlike rename().
                os.link(temporary, target)
            except FileExistsError:
                raise KeystoreExists(f"a keystore already exists at {target}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
