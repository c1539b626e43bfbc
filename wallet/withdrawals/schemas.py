"""Withdrawals as the API takes and shows them; `withdrawal.*` events carry `WithdrawalOut`."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from custody import checksum_address
from wallet.api.fields import Amount, AssetCode, ChainName, WalletId
from wallet.assets.service import Asset, Chain
from wallet.payouts.schemas import BankAccountDestination
from wallet.withdrawals.models import Withdrawal, WithdrawalStatus


class CryptoDestination(BaseModel):
    """An address on a chain. (The destination is an object so other kinds can join.)"""

    model_config = ConfigDict(extra="forbid")

    type: Literal["crypto"]
    chain: ChainName
    address: Annotated[str, StringConstraints(pattern="^0x[0-9a-fA-F]{40}$")] = Field(
        examples=["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"],
        description="EIP-55 checksummed, or all lower (or upper) case hex.",
    )


class WithdrawalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wallet_id: WalletId
    asset: AssetCode
    amount: Amount
    destination: CryptoDestination


class WithdrawalRequest(BaseModel):
    """What `POST /v1/withdrawals` takes: to an address on a chain, or to a bank account linked
    to the wallet (a payout, `wallet.payouts`)."""

    model_config = ConfigDict(extra="forbid")

    wallet_id: WalletId
    asset: AssetCode
    amount: Amount
    destination: Annotated[CryptoDestination | BankAccountDestination, Field(discriminator="type")]

    def to_crypto(self, destination: CryptoDestination) -> WithdrawalCreate:
        return WithdrawalCreate(
            wallet_id=self.wallet_id, asset=self.asset, amount=self.amount, destination=destination
        )


class WithdrawalOut(BaseModel):
    """A withdrawal. The wallet pays `amount` + `fee`, held from the request until the
    withdrawal is confirmed (posted) or ends otherwise (released)."""

    id: str = Field(examples=["wdr_mfrggzdfmztwq2lknnwg23tpobyxe43u"])
    wallet_id: str
    asset: str
    amount: str = Field(examples=["0.500000000000000000"])
    fee: str = Field(description="Quoted at the request; never more is charged.")
    destination: CryptoDestination
    internal: bool = Field(
        description="Paid to a wallet of this service (one of its deposit addresses): "
        "completed at once, no chain transaction, no fee."
    )
    status: WithdrawalStatus
    approvals_required: int
    approvals: int
    tx_hash: str | None = Field(description="The transaction that was mined, once it is.")
    block_number: int | None
    confirmations: int
    confirmations_required: int
    network_fee: str | None = Field(
        description="What the chain took, in its native asset, once mined."
    )
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(
        cls, withdrawal: Withdrawal, asset: Asset, native: Asset, chain: Chain, approvals: int
    ) -> "WithdrawalOut":
        return cls(
            id=withdrawal.id,
            wallet_id=withdrawal.wallet_id,
            asset=withdrawal.asset,
            amount=asset.format(withdrawal.amount),
            fee=asset.format(withdrawal.fee),
            destination=CryptoDestination(
                type="crypto",
                chain=withdrawal.chain,
                address=checksum_address(bytes.fromhex(withdrawal.address[2:])),
            ),
            internal=withdrawal.internal,
            status=WithdrawalStatus(withdrawal.status),
            approvals_required=withdrawal.approvals_required,
            approvals=approvals,
            tx_hash=withdrawal.tx_hash,
            block_number=withdrawal.block_number,
            confirmations=withdrawal.confirmations,
            confirmations_required=chain.confirmations,
            network_fee=None
            if withdrawal.network_fee is None
            else native.format(withdrawal.network_fee),
            failure_reason=withdrawal.failure_reason,
            created_at=withdrawal.created_at.astimezone(UTC),
            updated_at=withdrawal.updated_at.astimezone(UTC),
        )


AlertKind = Literal["unknown_transaction", "settled_withdrawal_reorged"]


class CustodyAlertOut(BaseModel):
    """What a `custody.alert` event says: the chain shows something of a hot wallet that the
    service did not expect, for an operator to check."""

    chain: str
    kind: AlertKind = Field(
        description="`unknown_transaction`: a hot wallet sent a transaction of no withdrawal "
        "or sweep (its key may be used elsewhere). `settled_withdrawal_reorged`: the "
        "transaction of a confirmed or failed withdrawal left the chain in a reorganisation "
        "deeper than the confirmations (a confirmed one is sent again, a failed one is not)."
    )
    tx_hash: str
    block_number: int
    withdrawal_id: str | None
    message: str
