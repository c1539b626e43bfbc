"""Pay-ins as the API shows them and `payin.*` events carry them; the request making one."""

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from wallet.api.fields import Amount, BankAccountId, FiatAssetCode, WalletId
from wallet.assets.service import Asset
from wallet.payins.models import Payin, PayinStatus


class PayinCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wallet_id: WalletId
    bank_account_id: BankAccountId
    asset: FiatAssetCode
    amount: Amount


class PayinOut(BaseModel):
    """`amount` is collected from the bank account; the wallet is credited `net_amount`
    (`amount - fee`) once it `succeeded`, and shows it as pending in before."""

    id: str = Field(examples=["pin_mfrggzdfmztwq2lknnwg23tpobyxe43u"])
    wallet_id: str
    bank_account_id: str
    asset: str
    amount: str = Field(examples=["100.00"])
    fee: str = Field(examples=["0.75"])
    net_amount: str = Field(examples=["99.25"])
    status: PayinStatus
    provider: str
    provider_payment_id: str | None = Field(
        description="The provider's id; the sandbox bank's pay page takes it."
    )
    failure_code: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, payin: Payin, asset: Asset) -> "PayinOut":
        return cls(
            id=payin.id,
            wallet_id=payin.wallet_id,
            bank_account_id=payin.bank_account_id,
            asset=payin.asset,
            amount=asset.format(payin.amount),
            fee=asset.format(payin.fee),
            net_amount=asset.format(payin.net_amount),
            status=PayinStatus(payin.status),
            provider=payin.provider,
            provider_payment_id=payin.provider_payment_id,
            failure_code=payin.failure_code,
            created_at=payin.created_at.astimezone(UTC),
            updated_at=payin.updated_at.astimezone(UTC),
        )
