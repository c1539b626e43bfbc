"""Arrivals: the transfers to deposit addresses in the blocks a follower step accepted.

Each becomes a deposit, or moves a re-mined one back to `seen`: first seen in a canonical
block, a deposit is `seen`, or `below_minimum` (recorded and reported, no money); the same
transfer seen again in another block (re-mined after a reorg) is back to `seen`, its count
restarted. New deposits are inserted in one statement once the step knows their final state.
"""

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chains import BlockHeader, ScannedBlock
from wallet.assets.service import Asset, AssetKind, Catalogue, Chain
from wallet.deposits import repository
from wallet.deposits.errors import InconsistentChainState
from wallet.deposits.models import DEPOSIT_PREFIX, Deposit, DepositStatus
from wallet.ids import new_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChainAssets:
    """One chain's configuration as the recorder needs it: the chain and its assets."""

    chain: Chain
    native: Asset
    tokens: Mapping[str, Asset]
    """ERC-20 assets by lowercase contract address (only those with an address configured)."""

    @classmethod
    def of(cls, catalogue: Catalogue, chain_name: str) -> "ChainAssets":
        chain = catalogue.chain(chain_name)
        assets = list(catalogue.assets_on(chain_name))
        natives = [a for a in assets if a.kind is AssetKind.NATIVE]
        if len(natives) != 1:
            raise ValueError(f"chain {chain_name} needs exactly one native asset in the catalogue")
        tokens = {}
        for asset in assets:
            if asset.kind is AssetKind.ERC20:
                if asset.contract_address is None:
                    logger.warning(
                        "asset %s on %s has no contract_address: its deposits are not watched",
                        asset.code,
                        chain_name,
                    )
                    continue
                tokens[asset.contract_address.lower()] = asset
        return cls(chain=chain, native=natives[0], tokens=tokens)

    @property
    def name(self) -> str:
        return self.chain.name

    @property
    def by_code(self) -> dict[str, Asset]:
        return {self.native.code: self.native} | {a.code: a for a in self.tokens.values()}

    @property
    def catalogue(self) -> Catalogue:
        """The chain and its assets as a catalogue of their own."""
        return Catalogue(chains={self.name: self.chain}, assets=self.by_code)

    def follower_tokens(self) -> dict[str, str]:
        """Contract address to asset code, as `chains.ChainFollower` takes them."""
        return {address: asset.code for address, asset in self.tokens.items()}


@dataclass
class DepositChanges:
    """What a step did to deposits, by deposit id (for logs, tests and benchmarks)."""

    seen: list[str] = field(default_factory=list)
    below_minimum: list[str] = field(default_factory=list)
    credited: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    reversed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(
            (self.seen, self.below_minimum, self.credited, self.held, self.orphaned, self.reversed)
        )


@dataclass(frozen=True)
class Arrival:
    """A transfer to a deposit address as the follower reported it."""

    tx_hash: str
    log_index: int
    asset: Asset
    amount: int
    from_address: str
    to_address: str
    block_number: int
    block_hash: str


def arrivals(assets: ChainAssets, blocks: Sequence[ScannedBlock]) -> Iterable[Arrival]:
    """The transfers to deposit addresses in `blocks`, but those our hot wallets sent (gas
    top-ups of sweeps): they move our own money, not a customer's."""
    for block in blocks:
        ours = {tx.tx_hash for tx in block.sent}
        for native in block.native_transfers:
            if native.tx_hash in ours:
                continue
            yield Arrival(
                tx_hash=native.tx_hash,
                log_index=native.index,
                asset=assets.native,
                amount=native.amount,
                from_address=native.from_address,
                to_address=native.to_address,
                block_number=native.block_number,
                block_hash=native.block_hash,
            )
        for token in block.token_transfers:
            asset = assets.tokens.get(token.token)
            if asset is None:
                raise InconsistentChainState(f"transfer of unconfigured token {token.token}")
            yield Arrival(
                tx_hash=token.tx_hash,
                log_index=token.log_index,
                asset=asset,
                amount=token.amount,
                from_address=token.from_address,
                to_address=token.to_address,
                block_number=token.block_number,
                block_hash=token.block_hash,
            )


def record_arrivals(
    session: Session,
    assets: ChainAssets,
    arrivals: list[Arrival],
    tip: BlockHeader,
    changes: DepositChanges,
) -> tuple[list[Deposit], list[tuple[Deposit, Asset]]]:
    """Update the re-mined deposits of `arrivals`; returns the new ones, not yet stored (the
    step inserts them in their final state), and the new and re-mined ones with their asset."""
    chain = assets.name
    addresses = json.dumps(sorted({a.to_address for a in arrivals}))
    owners = {
        row.address: (row.wallet_id, row.tenant_id)
        for row in session.execute(repository.OWNERS, {"chain": chain, "addresses": addresses})
    }
    transfers = json.dumps([[a.tx_hash, a.log_index] for a in arrivals])
    existing = {
        (d.tx_hash, d.log_index): d
        for d in session.scalars(
            select(Deposit).from_statement(repository.EXISTING_DEPOSITS),
            {"chain": chain, "transfers": transfers},
        )
    }
    new: list[Deposit] = []
    fresh: list[tuple[Deposit, Asset]] = []
    for arrival in arrivals:
        owner = owners.get(arrival.to_address)
        if owner is None:
            raise InconsistentChainState(
                f"{chain}: transfer to {arrival.to_address}, which is no deposit address"
            )
        status = (
            DepositStatus.BELOW_MINIMUM
            if arrival.amount < arrival.asset.min_deposit
            else DepositStatus.SEEN
        )
        confirmations = tip.number - arrival.block_number + 1
        deposit = existing.get((arrival.tx_hash, arrival.log_index))
        if deposit is None:
            deposit = Deposit(
                id=new_id(DEPOSIT_PREFIX),
                tenant_id=owner[1],
                wallet_id=owner[0],
                chain=chain,
                tx_hash=arrival.tx_hash,
                log_index=arrival.log_index,
                asset=arrival.asset.code,
                amount=arrival.amount,
                from_address=arrival.from_address,
                to_address=arrival.to_address,
                block_number=arrival.block_number,
                block_hash=arrival.block_hash,
                status=status,
                confirmations=confirmations,
                reversal_count=0,
            )
            new.append(deposit)
            fresh.append((deposit, arrival.asset))
        elif deposit.status in (DepositStatus.ORPHANED, DepositStatus.REVERSED):
            # Re-mined after a reorg: the same transfer in another block, or in the very block
            # it left when the chain returns to it; its count restarts.
            deposit.block_number = arrival.block_number
            deposit.block_hash = arrival.block_hash
            deposit.status = status
            deposit.confirmations = confirmations
            deposit.hold_id = None
            deposit.credit_transaction_id = None
            deposit.credited_at = None
            deposit.reversal_transaction_id = None
            deposit.updated_at = datetime.now(UTC)
            fresh.append((deposit, arrival.asset))
        elif deposit.block_hash == arrival.block_hash:
            continue  # this block was recorded already
        else:
            # Its old block was never rolled back, yet the transfer is in a new one: the stored
            # window and the chain disagree. Crediting on either block could be wrong.
            raise InconsistentChainState(
                f"{chain}: deposit {deposit.id} ({deposit.status}) is in block "
                f"{deposit.block_number} {deposit.block_hash} and now in "
                f"{arrival.block_number} {arrival.block_hash} without a rollback between"
            )
    session.flush()
    for deposit, asset in fresh:
        if deposit.status == DepositStatus.BELOW_MINIMUM:
            changes.below_minimum.append(deposit.id)
            logger.warning(
                "%s: deposit %s of %s %s to wallet %s is below the minimum of %s: recorded, "
                "not credited (tx %s)",
                chain,
                deposit.id,
                asset.format(deposit.amount),
                asset.code,
                deposit.wallet_id,
                asset.format(asset.min_deposit),
                deposit.tx_hash,
            )
        else:
            changes.seen.append(deposit.id)
    return new, fresh


def insert_deposits(session: Session, deposits: Sequence[Deposit]) -> None:
    """Store new deposits, as the step left them, in one statement; each gets its `seen_at`."""
    if not deposits:
        return
    # Read from each new deposit's own attributes: an attribute the step never set is None,
    # as the model would answer, at a fraction of the cost of the model's attribute access.
    fields = repository.DEPOSIT_FIELDS
    rows = [{name: vars(d).get(key) for name, key in fields} for d in deposits]
    document = json.dumps(rows, default=_json_value)
    seen = {
        row.id: row.seen_at
        for row in session.execute(repository.INSERT_DEPOSITS, {"deposits": document})
    }
    for deposit in deposits:
        deposit.seen_at = seen[deposit.id]


def _json_value(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"a deposit column cannot hold a {type(value).__name__}")
