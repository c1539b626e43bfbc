"""Assets and chains as the API lists them."""

from pydantic import BaseModel, Field

from wallet.assets.service import Asset, AssetKind, Catalogue


class AssetOut(BaseModel):
    code: str = Field(examples=["USDC"])
    kind: AssetKind
    decimals: int = Field(description="Decimal places of the asset's amounts.")
    chain: str | None = Field(description="The chain of a crypto asset; null for fiat.")
    chain_id: int | None
    contract_address: str | None = Field(description="The token contract, for ERC-20 assets.")
    min_deposit: str = Field(description="Smaller deposits are not credited.")
    withdrawal_fee: str

    @classmethod
    def of(cls, asset: Asset, catalogue: Catalogue) -> "AssetOut":
        return cls(
            code=asset.code,
            kind=asset.kind,
            decimals=asset.decimals,
            chain=asset.chain,
            chain_id=catalogue.chain(asset.chain).chain_id if asset.chain else None,
            contract_address=asset.contract_address,
            min_deposit=asset.format(asset.min_deposit),
            withdrawal_fee=asset.format(asset.withdrawal_fee),
        )


class AssetList(BaseModel):
    data: list[AssetOut]
