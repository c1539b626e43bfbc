"""The environment setting refuses development secrets in production; ports follow the settings."""

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from chains import ChainFollower, FakeChain
from wallet.assets.service import Catalogue
from wallet.deposits.addresses import DepositAddressBook, FakeAddressIssuer
from wallet.ports import address_issuer, open_chain_source
from wallet.settings import (
    AddressIssuerKind,
    ChainSourceKind,
    Environment,
    Settings,
    SettingsRefused,
    load_settings,
)

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])

REAL_CHAINS = """
[[chains]]
name = "ethereum"
chain_id = 1
rpc_url = "https://node.example/eth"
confirmations = 12

[[assets]]
code = "ETH"
kind = "native"
decimals = 18
chain = "ethereum"
"""

DEVNET = """
[[chains]]
name = "devnet"
chain_id = 31337
rpc_url = "https://node.example/dev"
confirmations = 1
"""

MARKED_LOCAL = """
[[chains]]
name = "sandbox"
chain_id = 777
rpc_url = "http://127.0.0.1:9545"
confirmations = 1
local = true
"""


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A production environment without development secrets; returns its catalogue file."""
    for name in list(os.environ):
        if name.startswith("WALLET_") and not name.startswith("WALLET_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env file
    catalogue = tmp_path / "assets.toml"
    catalogue.write_text(REAL_CHAINS)
    monkeypatch.setenv("WALLET_ENVIRONMENT", "production")
    monkeypatch.setenv("WALLET_ASSETS_FILE", str(catalogue))
    monkeypatch.setenv(
        "WALLET_WEBHOOK_SECRETS_KEY", base64.b64encode(secrets.token_bytes(32)).decode()
    )
    return catalogue


def test_production_without_development_secrets_starts(production: Path) -> None:
    settings = load_settings()

    assert settings.environment is Environment.PRODUCTION
    assert settings.assets_file == production


def test_private_webhook_targets_are_refused_in_production_unless_allowed(
    production: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().webhook_private_targets_allowed is False
    monkeypatch.setenv("WALLET_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    assert load_settings().webhook_private_targets_allowed is True
    monkeypatch.setenv("WALLET_ENVIRONMENT", "development")
    monkeypatch.delenv("WALLET_WEBHOOK_ALLOW_PRIVATE_TARGETS")
    assert load_settings().webhook_private_targets_allowed is True
    monkeypatch.setenv("WALLET_WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")
    assert load_settings().webhook_private_targets_allowed is False


def test_development_accepts_what_production_refuses(
    production: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WALLET_ENVIRONMENT", "development")
    monkeypatch.delenv("WALLET_ASSETS_FILE")
    monkeypatch.delenv("WALLET_WEBHOOK_SECRETS_KEY")
    monkeypatch.setenv("WALLET_DEV_MNEMONIC", MNEMONIC)

    settings = load_settings()

    assert settings.environment is Environment.DEVELOPMENT
    assert settings.dev_mnemonic is not None


@pytest.mark.parametrize(
    ("variable", "value", "refusal"),
    [
        (
            "WALLET_DEV_MNEMONIC",
            MNEMONIC,
            "WALLET_DEV_MNEMONIC is set: a seed in the environment is for development only; "
            "use WALLET_DEPOSIT_XPUBS or WALLET_SEED_KEYSTORE",
        ),
        (
            "WALLET_WEBHOOK_SECRETS_KEY",
            None,
            "WALLET_WEBHOOK_SECRETS_KEY is not set: a key generated into the data directory is "
            "for development only; set 32 random bytes in base64",
        ),
        (
            "catalogue",
            DEVNET,
            "chain devnet (chain id 31337) is a local devnet; "
            "set WALLET_ASSETS_FILE to a catalogue of real chains",
        ),
        (
            "catalogue",
            MARKED_LOCAL,
            "chain sandbox (chain id 777) is a local devnet; "
            "set WALLET_ASSETS_FILE to a catalogue of real chains",
        ),
        (
            "WALLET_CHAIN_SOURCE",
            "fake",
            "WALLET_CHAIN_SOURCE=fake: fakes are for tests and development only",
        ),
        (
            "WALLET_ADDRESS_ISSUER",
            "fake",
            "WALLET_ADDRESS_ISSUER=fake: fakes are for tests and development only",
        ),
    ],
)
def test_production_refuses_each_development_secret_with_a_clear_message(
    production: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str | None,
    refusal: str,
) -> None:
    if variable == "catalogue":
        assert value is not None
        production.write_text(REAL_CHAINS + value)
    elif value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsRefused) as refused:
        load_settings()

    assert str(refused.value) == (
        "wallet: refusing to start.\n"
        "settings: WALLET_ENVIRONMENT=production refuses development settings:\n"
        f"  - {refusal}"
    )


def test_wallet_serve_in_production_lists_every_refusal_and_never_the_secret(
    production: Path,
) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "WALLET_WEBHOOK_SECRETS_KEY"}
    environment.pop("WALLET_ASSETS_FILE")  # the built-in catalogue: the two devnets
    environment["WALLET_DEV_MNEMONIC"] = MNEMONIC

    served = subprocess.run(
        [str(Path(sys.executable).parent / "wallet"), "serve"],
        check=False,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert served.returncode == 1
    assert served.stdout == ""
    lines = served.stderr.splitlines()
    assert lines[:2] == [
        "wallet: refusing to start.",
        "settings: WALLET_ENVIRONMENT=production refuses development settings:",
    ]
    assert [line.split(":")[0] for line in lines[2:]] == [
        "  - WALLET_DEV_MNEMONIC is set",
        "  - WALLET_WEBHOOK_SECRETS_KEY is not set",
        "  - chain devnet (chain id 31337) is a local devnet; set WALLET_ASSETS_FILE to a "
        "catalogue of real chains",
        "  - chain devnet-l2 (chain id 31338) is a local devnet; set WALLET_ASSETS_FILE to a "
        "catalogue of real chains",
    ]
    assert "abandon" not in served.stderr


def test_the_address_issuer_is_chosen_by_the_settings(catalogue: Catalogue) -> None:
    fake = address_issuer(Settings(address_issuer=AddressIssuerKind.FAKE), catalogue)
    real = address_issuer(Settings(dev_mnemonic=SecretStr(MNEMONIC)), catalogue)

    assert isinstance(fake, FakeAddressIssuer)
    assert isinstance(real, DepositAddressBook)
    assert fake.issues_on("devnet") and real.issues_on("devnet")
    assert fake.address("devnet", 0) != real.address("devnet", 0)
    assert fake.address("devnet", 0) != fake.address("devnet", 1)
    assert fake.account("devnet") == real.account("devnet") == 31337


def test_the_chain_source_is_chosen_by_the_settings(catalogue: Catalogue) -> None:
    fake_settings = Settings(chain_source=ChainSourceKind.FAKE)
    with open_chain_source(fake_settings, catalogue, "devnet") as fake:
        assert isinstance(fake, FakeChain)
        assert fake.head() == 0
    with open_chain_source(Settings(), catalogue, "devnet") as real:
        assert isinstance(real, ChainFollower)
