"""Which implementation of each port a process uses, chosen from its settings at start.

The ports, their implementations and settings are listed in docs/architecture.md ("Ports");
the bank provider (`fiat`) is chosen here the same way.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from chains import ChainSource, FakeChain, RpcClient, TraceMode
from wallet.assets.service import Catalogue
from wallet.deposits.addresses import AddressIssuer, FakeAddressIssuer, load_address_book
from wallet.deposits.arrivals import ChainAssets
from wallet.deposits.watcher import chain_follower
from wallet.settings import AddressIssuerKind, ChainSourceKind, Settings


def address_issuer(settings: Settings, catalogue: Catalogue) -> AddressIssuer:
    if settings.address_issuer is AddressIssuerKind.FAKE:
        return FakeAddressIssuer(catalogue.chains.values())
    return load_address_book(settings, catalogue)


@contextmanager
def open_chain_source(
    settings: Settings,
    catalogue: Catalogue,
    chain: str,
    *,
    trace_mode: TraceMode = TraceMode.NONE,
    start_block: int | None = None,
) -> Iterator[ChainSource]:
    """The source of `chain`'s blocks, for as long as the context lasts."""
    if settings.chain_source is ChainSourceKind.FAKE:
        tokens = ChainAssets.of(catalogue, chain).follower_tokens()
        yield FakeChain(tokens=tokens, start_block=start_block)
        return
    with RpcClient(catalogue.chain(chain).rpc_url) as rpc:
        yield chain_follower(catalogue, chain, rpc, trace_mode=trace_mode, start_block=start_block)
