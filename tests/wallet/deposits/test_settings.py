"""Where a process gets its deposit address keys: xpubs, a keystore, or a loud dev mnemonic."""

import json
import logging
from pathlib import Path

import pytest

from custody import MasterSeed, create_keystore
from tests.wallet.deposits.conftest import TEST_MNEMONIC
from wallet.assets.service import Catalogue
from wallet.deposits.addresses import DepositAddressBook, load_address_book
from wallet.settings import Settings

SETTINGS = ("DEPOSIT_XPUBS", "SEED_KEYSTORE", "SEED_PASSWORD", "DEV_MNEMONIC")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SETTINGS:
        monkeypatch.delenv(f"WALLET_{name}", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file


def test_every_source_gives_the_same_addresses(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    catalogue: Catalogue,
    seed: MasterSeed,
    caplog: pytest.LogCaptureFixture,
) -> None:
    expected = DepositAddressBook.from_seed(seed, catalogue.chains.values())
    keystore = create_keystore(tmp_path / "seed.json", TEST_MNEMONIC, "pw", scrypt_n=2**4)

    monkeypatch.setenv("WALLET_SEED_KEYSTORE", str(keystore))
    monkeypatch.setenv("WALLET_SEED_PASSWORD", "pw")
    from_keystore = load_address_book(Settings(), catalogue)
    monkeypatch.delenv("WALLET_SEED_KEYSTORE")
    monkeypatch.setenv("WALLET_DEV_MNEMONIC", TEST_MNEMONIC)
    with caplog.at_level(logging.WARNING):
        from_mnemonic = load_address_book(Settings(), catalogue)
    xpubs = {name: d.account_xpub for name, d in expected.derivers.items()}
    monkeypatch.setenv("WALLET_DEPOSIT_XPUBS", json.dumps(xpubs))
    from_xpubs = load_address_book(Settings(), catalogue)

    for book in (from_keystore, from_mnemonic, from_xpubs):
        assert set(book.derivers) == {"devnet", "devnet-l2"}
        assert [book.address("devnet-l2", i) for i in range(3)] == [
            expected.address("devnet-l2", i) for i in range(3)
        ]
    assert any("WALLET_DEV_MNEMONIC" in r.getMessage() for r in caplog.records)
    assert TEST_MNEMONIC not in caplog.text


def test_without_keys_no_chain_issues_addresses(catalogue: Catalogue) -> None:
    assert load_address_book(Settings(), catalogue).derivers == {}


def test_a_keystore_without_its_password_is_a_start_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, catalogue: Catalogue
) -> None:
    monkeypatch.setenv("WALLET_SEED_KEYSTORE", str(tmp_path / "seed.json"))
    with pytest.raises(ValueError, match="WALLET_SEED_PASSWORD"):
        load_address_book(Settings(), catalogue)
