"""The asset and chain catalogue: configuration, not code."""

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from wallet.assets import repository
from wallet.assets.errors import UnknownAsset, UnknownChain
from wallet.money import format_amount, parse_amount


class AssetKind(StrEnum):
    FIAT = "fiat"
    NATIVE = "native"
    ERC20 = "erc20"


@dataclass(frozen=True)
class Chain:
    name: str
    chain_id: int
    rpc_url: str
    confirmations: int
    # Seconds between the chain's blocks: how `wallet devnet` mines a local chain (with 0, a
    # block for each transaction as it arrives: Anvil's automine), and how often the watcher
    # asks the node for its head (`poll_interval_for`).
    block_time: float = 1.0
    local: bool = False
    """A development chain (an Anvil devnet): `wallet run` starts it; production refuses it."""

    def __post_init__(self) -> None:
        if self.block_time < 0:
            raise ValueError(f"chain {self.name}: block_time must be 0 or more")


@dataclass(frozen=True)
class Asset:
    code: str
    kind: AssetKind
    decimals: int
    chain: str | None = None
    contract_address: str | None = None
    min_deposit: int = 0
    withdrawal_fee: int = 0

    def parse(self, text: str) -> int:
        """Parse a decimal string of this asset into minor units."""
        return parse_amount(text, self.decimals)

    def format(self, units: int) -> str:
        """Format minor units of this asset as a decimal string."""
        return format_amount(units, self.decimals)


@dataclass(frozen=True)
class Catalogue:
    """The configured chains and assets, looked up by name and code."""

    chains: dict[str, Chain]
    assets: dict[str, Asset]

    def asset(self, code: str) -> Asset:
        try:
            return self.assets[code]
        except KeyError:
            raise UnknownAsset(f"no asset {code!r}; known: {', '.join(self.assets)}") from None

    def chain(self, name: str) -> Chain:
        try:
            return self.chains[name]
        except KeyError:
            raise UnknownChain(f"no chain {name!r}; known: {', '.join(self.chains)}") from None

    def assets_on(self, chain: str) -> Iterable[Asset]:
        return (asset for asset in self.assets.values() if asset.chain == chain)


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read a TOML catalogue; the built-in one when no path is given."""
    if path is None:
        text = resources.files("wallet.assets").joinpath("catalogue.toml").read_text()
    else:
        text = path.read_text()
    return _build(tomllib.loads(text))


def _build(document: dict[str, Any]) -> Catalogue:
    chains = {entry["name"]: Chain(**entry) for entry in document.get("chains", [])}
    assets: dict[str, Asset] = {}
    for entry in document.get("assets", []):
        decimals = int(entry["decimals"])
        chain = entry.get("chain")
        if chain is not None and chain not in chains:
            raise ValueError(f"asset {entry['code']} names unknown chain {chain!r}")
        assets[entry["code"]] = Asset(
            code=entry["code"],
            kind=AssetKind(entry["kind"]),
            decimals=decimals,
            chain=chain,
            contract_address=entry.get("contract_address"),
            min_deposit=int(entry.get("min_deposit", 0)),
            withdrawal_fee=int(entry.get("withdrawal_fee", 0)),
        )
    return Catalogue(chains=chains, assets=assets)


def store_catalogue(session: Session, catalogue: Catalogue) -> None:
    """Write the configured assets to the database, which the ledger's rows refer to."""
    for asset in catalogue.assets.values():
        repository.store_asset(session, asset.code, asset.kind.value, asset.decimals, asset.chain)
