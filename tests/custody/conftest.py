"""Shared fixtures for the custody tests: the well-known Hardhat/Anvil test mnemonic."""

import pytest
from eth_account import Account

from custody import DepositKeyTree, MasterSeed

HARDHAT_MNEMONIC = "test test test test test test test test test test test junk"


@pytest.fixture(scope="session")
def eth_account_hd() -> type[Account]:
    """eth-account's Account with its mnemonic features switched on (off by default)."""
    Account.enable_unaudited_hdwallet_features()
    return Account


@pytest.fixture(scope="session")
def hardhat_mnemonic() -> str:
    return HARDHAT_MNEMONIC


@pytest.fixture(scope="session")
def hardhat_seed() -> MasterSeed:
    return MasterSeed.from_mnemonic(HARDHAT_MNEMONIC)


@pytest.fixture(scope="session")
def hardhat_tree(hardhat_seed: MasterSeed) -> DepositKeyTree:
    return DepositKeyTree(hardhat_seed, account=0)
