"""Payouts as the API shows them and `payout.*` events carry them."""

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from wallet.api.fields import BankAccountId
from wallet.assets.service import Asset
from wallet.payouts.models import Payout, PayoutStatus


class BankAccountDestination(BaseModel):
    """A bank account linked to the wallet (`POST /v1/bank-accounts`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["bank_account"]
    bank_account_id: BankAccountId


class PayoutOut(BaseModel):
    """A withdrawal to a bank account. The wallet pays `amount` + `fee`, held from the request
    until the payout is `paid` (posted) or `failed` (released); `returned` after paid credits
    it back."""

    id: str = Field(examples=["pot_mfrggzdfmztwq2lknnwg23tpobyxe43u"])
    wallet_id: str
    asset: str
    amount: str = Field(examples=["100.00"])
    fee: str = Field(examples=["1.00"])
    destination: BankAccountDestination
    status: PayoutStatus
    provider: str
    provider_payment_id: str | None
    failure_code: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, payout: Payout, asset: Asset) -> "PayoutOut":
        return cls(
            id=payout.id,
            wallet_id=payout.wallet_id,
            asset=payout.asset,
            amount=asset.format(payout.amount),
            fee=asset.format(payout.fee),
            destination=BankAccountDestination(
                type="bank_account", bank_account_id=payout.bank_account_id
            ),
            status=PayoutStatus(payout.status),
            provider=payout.provider,
            provider_payment_id=payout.provider_payment_id,
            failure_code=payout.failure_code,
            created_at=payout.created_at.astimezone(UTC),
            updated_at=payout.updated_at.astimezone(UTC),
        )
