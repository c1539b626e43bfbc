"""Pytest plugin with Anvil devnets: `pytest_plugins = ["tests.devnet_fixtures"]`.

`devnet` is one session-wide chain (id 31337) with TestUSD and Forwarder deployed and every dev
account holding 1,000,000 USDC; `second_devnet` (id 31338) starts only when a test asks for it.
Mining is manual: send transactions, then `mine()`. Tests share the chains, so each test should
use fresh addresses and start following from the current head.
"""

from collections.abc import Iterator

import pytest

from chains.devnet import DevChain, start_dev_chain

SECOND_CHAIN_ID = 31338


@pytest.fixture(scope="session")
def devnet() -> Iterator[DevChain]:
    """The main devnet (chain id 31337), stopped at the end of the session."""
    chain = start_dev_chain()
    try:
        yield chain
    finally:
        chain.devnet.stop()


@pytest.fixture(scope="session")
def second_devnet() -> Iterator[DevChain]:
    """Another devnet with chain id 31338, for tests that need two chains."""
    chain = start_dev_chain(chain_id=SECOND_CHAIN_ID)
    try:
        yield chain
    finally:
        chain.devnet.stop()
