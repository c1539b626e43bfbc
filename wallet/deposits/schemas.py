"""Deposit addresses and deposits as the API shows them; `deposit.*` events carry `DepositOut`."""

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from custody import checksum_address
from wallet.api.fields import ChainName
from wallet.assets.service import Asset, Catalogue, Chain
from wallet.deposits.models import ChainRunState, Deposit, DepositAddress, DepositStatus


class DepositAddressCreate(BaseModel):
    chain: ChainName


class DepositAddressOut(BaseModel):
    """Where the wallet's owner sends funds on a chain: ETH and every configured token."""

    id: str = Field(examples=["dad_mfrggzdfmztwq2lknnwg23tpobyxe43u"])
    wallet_id: str
    chain: str
    chain_id: int
    address: str = Field(
        examples=["0x9858EfFD232B4033E47d90003D41EC34EcaEda94"], description="EIP-55 checksummed."
    )
    created_at: datetime

    @classmethod
    def of(cls, address: DepositAddress, catalogue: Catalogue) -> "DepositAddressOut":
        return cls(
            id=address.id,
            wallet_id=address.wallet_id,
            chain=address.chain,
            chain_id=catalogue.chain(address.chain).chain_id,
            address=checksum_address(bytes.fromhex(address.address[2:])),
            created_at=address.created_at.astimezone(UTC),
        )


class DepositOut(BaseModel):
    """A transfer to a deposit address. Only `credited` deposits are in the spendable balance;
    `seen` ones show as pending in."""

    id: str = Field(examples=["dep_mfrggzdfmztwq2lknnwg23tpobyxe43u"])
    wallet_id: str
    chain: str
    asset: str
    amount: str = Field(examples=["1.500000"])
    status: DepositStatus
    confirmations: int
    confirmations_required: int
    tx_hash: str
    log_index: int = Field(
        description="The ERC-20 log's index; -1 for a transaction's own ETH value, -2 and below "
        "for ETH sent by a contract's internal call."
    )
    block_number: int
    block_hash: str
    from_address: str
    to_address: str
    seen_at: datetime
    credited_at: datetime | None

    @classmethod
    def of(cls, deposit: Deposit, asset: Asset, chain: Chain, confirmations: int) -> "DepositOut":
        return cls(
            id=deposit.id,
            wallet_id=deposit.wallet_id,
            chain=deposit.chain,
            asset=deposit.asset,
            amount=asset.format(deposit.amount),
            status=DepositStatus(deposit.status),
            confirmations=confirmations,
            confirmations_required=chain.confirmations,
            tx_hash=deposit.tx_hash,
            log_index=deposit.log_index,
            block_number=deposit.block_number,
            block_hash=deposit.block_hash,
            from_address=deposit.from_address,
            to_address=deposit.to_address,
            seen_at=deposit.seen_at.astimezone(UTC),
            credited_at=None
            if deposit.credited_at is None
            else deposit.credited_at.astimezone(UTC),
        )


class ChainStateOut(BaseModel):
    """A chain's watcher state, as `chain.halted` and `chain.resumed` events carry it."""

    chain: str
    chain_id: int
    state: ChainRunState
    reason: str | None = Field(description="Why the watcher halted; null while it runs.")
    since: datetime
    block_number: int | None = Field(
        description="The newest block recorded (the watcher's cursor); null before the first."
    )
