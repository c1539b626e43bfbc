"""The encrypted seed keystore: round trip, errors, file mode and secrecy."""

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_keyfile.keyfile import create_keyfile_json, decode_keyfile_json

from custody import (
    KeystoreExists,
    MalformedKeystore,
    MasterSeed,
    WrongPassword,
    create_keystore,
    load_seed,
)
from custody.keystore import DEFAULT_SCRYPT_N, MAX_SCRYPT_N

PASSWORD = "correct horse battery staple"
FAST_N = 2**10  # scrypt cost for tests only; production keeps DEFAULT_SCRYPT_N


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_from_a_seed(tmp_path: Path, hardhat_seed: MasterSeed) -> None:
    path = create_keystore(tmp_path / "seed.json", hardhat_seed, PASSWORD, scrypt_n=FAST_N)
    assert load_seed(path, PASSWORD) == hardhat_seed


def test_round_trip_from_a_mnemonic(
    tmp_path: Path, hardhat_mnemonic: str, hardhat_seed: MasterSeed
) -> None:
    path = create_keystore(tmp_path / "seed.json", hardhat_mnemonic, PASSWORD, scrypt_n=FAST_N)
    assert load_seed(str(path), PASSWORD) == hardhat_seed


def test_round_trip_at_the_production_scrypt_cost(tmp_path: Path, hardhat_seed: MasterSeed) -> None:
    path = create_keystore(tmp_path / "seed.json", hardhat_seed, PASSWORD)
    assert json.loads(path.read_text())["crypto"]["kdfparams"]["n"] == DEFAULT_SCRYPT_N
    assert load_seed(path, PASSWORD) == hardhat_seed


def test_the_file_is_a_standard_v3_document_eth_keyfile_decrypts(
    tmp_path: Path, hardhat_seed: MasterSeed
) -> None:
    path = create_keystore(tmp_path / "seed.json", hardhat_seed, PASSWORD, scrypt_n=FAST_N)
    document = json.loads(path.read_text())
    assert document["version"] == 3
    assert document["crypto"]["kdf"] == "scrypt"
    assert document["crypto"]["cipher"] == "aes-128-ctr"
    assert decode_keyfile_json(document, PASSWORD.encode()) == hardhat_seed.secret


def test_eth_keyfile_cannot_create_a_keystore_for_a_64_byte_seed(
    hardhat_seed: MasterSeed,
) -> None:
    # Why custody.keystore builds the v3 document itself.
    with pytest.raises(ValueError):
        create_keyfile_json(hardhat_seed.secret, PASSWORD.encode(), kdf="scrypt", iterations=2)


def test_wrong_password_is_a_typed_error_without_secrets(
    tmp_path: Path, hardhat_seed: MasterSeed
) -> None:
    path = create_keystore(tmp_path / "seed.json", hardhat_seed, PASSWORD, scrypt_n=FAST_N)
    with pytest.raises(WrongPassword) as caught:
        load_seed(path, "tr0ub4dor&3")
    message = str(caught.value)
    assert "tr0ub4dor" not in message
    assert PASSWORD not in message
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_file_is_0600_whatever_the_umask(
    tmp_path: Path, hardhat_seed: MasterSeed, permissive_umask: None
) -> None:
    path = create_keystore(tmp_path / "seed.json", hardhat_seed, PASSWORD, scrypt_n=FAST_N)
    assert _mode(path) == 0o600
    replaced = create_keystore(path, hardhat_seed, PASSWORD, scrypt_n=FAST_N, overwrite=True)
    assert _mode(replaced) == 0o600


def test_existing_keystore_is_not_overwritten_unless_asked(
    tmp_path: Path, hardhat_seed: MasterSeed
) -> None:
    path = create_keystore(tmp_path / "seed.json", hardhat_seed, PASSWORD, scrypt_n=FAST_N)
    before = path.read_bytes()
    with pytest.raises(KeystoreExists):
        create_keystore(path, hardhat_seed, "another password", scrypt_n=FAST_N)
    assert path.read_bytes() == before
    create_keystore(path, hardhat_seed, "another password", scrypt_n=FAST_N, overwrite=True)
    assert load_seed(path, "another password") == hardhat_seed
    assert [entry.name for entry in tmp_path.iterdir()] == ["seed.json"]  # no temporary left


def test_file_holds_no_plaintext_secret(
    tmp_path: Path, hardhat_mnemonic: str, hardhat_seed: MasterSeed
) -> None:
    path = create_keystore(tmp_path / "seed.json", hardhat_seed, PASSWORD, scrypt_n=FAST_N)
    text = path.read_text()
    assert hardhat_seed.secret.hex() not in text
    assert hardhat_seed.secret.hex()[:32] not in text
    assert PASSWORD not in text
    assert "test test" not in text


def test_secrets_never_appear_in_repr_or_str(hardhat_seed: MasterSeed) -> None:
    for text in (repr(hardhat_seed), str(hardhat_seed), f"{hardhat_seed}", f"{hardhat_seed!r}"):
        assert text == "MasterSeed(<redacted>)"


def _write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def _valid_document(tmp_path: Path, seed: MasterSeed) -> dict[str, object]:
    path = create_keystore(tmp_path / "valid.json", seed, PASSWORD, scrypt_n=FAST_N)
    document: dict[str, object] = json.loads(path.read_text())
    return document


def test_non_json_file_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_bytes(b"\xff\xfe not json")
    with pytest.raises(MalformedKeystore):
        load_seed(path, PASSWORD)
    with pytest.raises(MalformedKeystore):
        load_seed(_write_json(tmp_path / "list.json", [1, 2]), PASSWORD)


def test_an_ordinary_account_keystore_is_refused(tmp_path: Path) -> None:
    account_keystore = create_keyfile_json(
        bytes(range(1, 33)), PASSWORD.encode(), kdf="scrypt", iterations=FAST_N
    )
    with pytest.raises(MalformedKeystore, match="not a custody seed keystore"):
        load_seed(_write_json(tmp_path / "account.json", account_keystore), PASSWORD)


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("kdfparams", "n", MAX_SCRYPT_N * 2),
        ("kdfparams", "n", "1024"),
        ("kdfparams", "dklen", 64),
        ("kdfparams", "salt", "not hex"),
        ("cipherparams", "iv", None),
        ("crypto", "ciphertext", "zz"),
        ("crypto", "kdf", "pbkdf2"),
        ("crypto", "cipher", "aes-256-gcm"),
    ],
)
def test_damaged_fields_are_malformed(
    tmp_path: Path, hardhat_seed: MasterSeed, section: str, field: str, value: object
) -> None:
    document = _valid_document(tmp_path, hardhat_seed)
    crypto = document["crypto"]
    assert isinstance(crypto, dict)
    target = crypto if section == "crypto" else crypto[section]
    target[field] = value
    with pytest.raises(MalformedKeystore):
        load_seed(_write_json(tmp_path / "damaged.json", document), PASSWORD)


def test_tampered_ciphertext_fails_the_mac(tmp_path: Path, hardhat_seed: MasterSeed) -> None:
    document = _valid_document(tmp_path, hardhat_seed)
    crypto = document["crypto"]
    assert isinstance(crypto, dict)
    ciphertext = bytearray.fromhex(crypto["ciphertext"])
    ciphertext[0] ^= 1
    crypto["ciphertext"] = ciphertext.hex()
    # A MAC mismatch cannot tell a wrong password from a damaged ciphertext.
    with pytest.raises(WrongPassword):
        load_seed(_write_json(tmp_path / "tampered.json", document), PASSWORD)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_seed(tmp_path / "absent.json", PASSWORD)


def test_empty_password_and_odd_scrypt_costs_are_refused(
    tmp_path: Path, hardhat_seed: MasterSeed
) -> None:
    with pytest.raises(ValueError, match="password"):
        create_keystore(tmp_path / "a.json", hardhat_seed, "", scrypt_n=FAST_N)
    for scrypt_n in (1000, 1, MAX_SCRYPT_N * 2):
        with pytest.raises(ValueError, match="scrypt_n"):
            create_keystore(tmp_path / "b.json", hardhat_seed, PASSWORD, scrypt_n=scrypt_n)
    assert list(tmp_path.iterdir()) == []
