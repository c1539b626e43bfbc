"""`wallet devnet`: an Anvil node (from npm) for each local chain of the catalogue."""

import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from chains.devnet import DevChain, Devnet, DevnetError, start_dev_chain
from wallet.assets.service import AssetKind, Catalogue, Chain

# What a new chain's hot wallet gets from Anvil's first account, so withdrawals can go out.
HOT_WALLET_ETH = 100 * 10**18
HOT_WALLET_TOKENS = 100_000 * 10**6


@dataclass(frozen=True)
class Funding:
    """What a new chain's hot wallet was sent: `amount` of the catalogue's `asset`, mined in
    the transaction `tx_hash`."""

    asset: str
    amount: int
    tx_hash: str


BookFunding = Callable[[Chain, str, Sequence[Funding]], None]
"""Books the funding of a new chain's hot wallet (chain, address, what was sent) in the
ledger, as the house's capital."""


def run_devnets(
    catalogue: Catalogue,
    state_dir: Path,
    stop: threading.Event,
    report: Callable[[str], None],
    *,
    fresh: bool,
    hot_wallets: Mapping[str, str],
    book: BookFunding | None = None,
) -> None:
    """Run the nodes until `stop` is set; each chain's state is kept in `state_dir`.

    A new chain gets the test stablecoin deployed by Anvil's first account, at the address the
    catalogue expects, and its hot wallet (from `hot_wallets`, by chain name) ETH and test
    stablecoins from that account, booked by `book`; a kept chain is resumed as it was.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    nodes: list[Devnet] = []
    try:
        for chain in local_chains(catalogue):
            state = state_dir / f"{chain.name}.json"
            hot_wallet = hot_wallets.get(chain.name)
            nodes.append(
                start_node(
                    catalogue, chain, state, report, fresh=fresh, hot_wallet=hot_wallet, book=book
                )
            )
        if not nodes:
            raise DevnetError("no chain of the catalogue is marked local")
        report(f"devnet running; chains kept in {state_dir}")
        while not stop.wait(0.5):
            if not all(node.is_running for node in nodes):
                raise DevnetError("an Anvil node exited")
    finally:
        for node in nodes:
            node.stop()  # SIGTERM: Anvil writes its state file


def local_chains(catalogue: Catalogue) -> list[Chain]:
    """The chains marked `local = true` in the catalogue: the devnets."""
    return [chain for chain in catalogue.chains.values() if chain.local]


def start_node(
    catalogue: Catalogue,
    chain: Chain,
    state: Path,
    report: Callable[[str], None],
    *,
    fresh: bool,
    hot_wallet: str | None = None,
    book: BookFunding | None = None,
) -> Devnet:
    port = urlsplit(chain.rpc_url).port
    if port is None:
        raise DevnetError(f"{chain.name}: rpc_url {chain.rpc_url} names no port")
    if port_taken(port):
        raise DevnetError(f"{chain.name}: port {port} is in use; is a devnet running already?")
    if fresh:
        state.unlink(missing_ok=True)
    automine, block_time = chain.block_time == 0, chain.block_time or None
    mined = "a block per transaction" if automine else f"a block every {block_time:g} s"
    if state.exists():
        node = Devnet(
            port=port,
            chain_id=chain.chain_id,
            automine=automine,
            block_time=block_time,
            load_state=state,
            dump_state=state,
        )
        node.start()
        report(f"{chain.name}: chain id {chain.chain_id} on {node.rpc_url}, {mined} (resumed)")
        return node
    dev = start_dev_chain(
        chain_id=chain.chain_id,
        port=port,
        automine=automine,
        block_time=block_time,
        extra_args=("--dump-state", str(state)),
    )
    report(f"{chain.name}: chain id {chain.chain_id} on {dev.rpc_url}, {mined}")
    if hot_wallet is not None:
        funding = fund_hot_wallet(catalogue, chain, dev, hot_wallet)
        if book is not None:
            book(chain, hot_wallet, funding)
        report(f"{chain.name}: hot wallet {hot_wallet} funded with 100 ETH and 100,000 USDC")
    for asset in catalogue.assets_on(chain.name):
        if (
            asset.kind is AssetKind.ERC20
            and (asset.contract_address or "").lower() != dev.token_address
        ):
            report(
                f"warning: the catalogue gives {asset.code} the contract "
                f"{asset.contract_address}, but the test stablecoin is at {dev.token_address}"
            )
    return dev.devnet


def fund_hot_wallet(
    catalogue: Catalogue, chain: Chain, dev: DevChain, address: str
) -> list[Funding]:
    """Send ETH and test stablecoins from Anvil's first account to the hot wallet, mined;
    what was sent of the chain's assets in the catalogue (the native one, and the token at
    the test stablecoin's address)."""
    sent = {
        "native": (dev.send_eth(dev.deployer.address, address, HOT_WALLET_ETH), HOT_WALLET_ETH),
        dev.token_address: (
            dev.send_tokens(dev.deployer.address, address, HOT_WALLET_TOKENS),
            HOT_WALLET_TOKENS,
        ),
    }
    dev.mine()
    funding = []
    for asset in catalogue.assets_on(chain.name):
        which = "native" if asset.kind is AssetKind.NATIVE else (asset.contract_address or "")
        if which.lower() in sent:
            tx_hash, amount = sent[which.lower()]
            funding.append(Funding(asset.code, amount, tx_hash))
    return funding


def port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
