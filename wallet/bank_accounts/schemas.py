"""Bank accounts as the API shows them, and the request linking one."""

from datetime import UTC, datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, model_validator
from pydantic.config import JsonDict

from wallet.api.fields import WalletId, storable
from wallet.bank_accounts.models import BankAccount

Text = Annotated[str, StringConstraints(min_length=1, max_length=200), storable]
# A provider's token is an opaque identifier: letters, digits, `_`, `-`, `.`.
TOKEN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$"  # noqa: S105 (a pattern, not a secret)
Token = Annotated[str, StringConstraints(pattern=TOKEN_PATTERN)]


# The two forms of a request, as the schema states them (`_one_form` enforces them).
_DETAILS: list[JsonValue] = ["holder_name", "account_number", "currency", "country"]
_STRING: JsonDict = {"type": "string"}
_BY_TOKEN: JsonDict = {
    "required": ["token"],
    "properties": {"token": {"type": "string", "pattern": TOKEN_PATTERN}},
    "not": {"anyOf": [{"required": [field]} for field in _DETAILS]},
}
_BY_DETAILS: JsonDict = {
    "required": _DETAILS,
    "properties": {str(field): _STRING for field in _DETAILS},
    "not": {"required": ["token"]},
}


class BankAccountCreate(BaseModel):
    """Either the provider's `token` for an account it already holds (its hosted form), or the
    account's details (sandbox test details: an account number ending 0000 is closed)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [_BY_TOKEN, _BY_DETAILS]})

    wallet_id: WalletId
    token: Token | None = None
    holder_name: Text | None = None
    account_number: (
        Annotated[str, StringConstraints(min_length=4, max_length=34, pattern=r"^[0-9A-Z]+$")]
        | None
    ) = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        details = (self.holder_name, self.account_number, self.currency, self.country)
        if self.token is not None and any(value is not None for value in details):
            raise ValueError("give either a token or the account's details, not both")
        if self.token is None and any(value is None for value in details):
            raise ValueError("give a token, or holder_name, account_number, currency and country")
        return self


class BankAccountOut(BaseModel):
    id: str = Field(examples=["bac_mfrggzdfmztwq2lknnwg23tpobyxe43u"])
    wallet_id: str
    provider: str
    holder_name: str
    last4: str = Field(examples=["6789"])
    currency: str
    country: str
    created_at: datetime

    @classmethod
    def of(cls, account: BankAccount) -> "BankAccountOut":
        return cls(
            id=account.id,
            wallet_id=account.wallet_id,
            provider=account.provider,
            holder_name=account.holder_name,
            last4=account.last4,
            currency=account.currency,
            country=account.country,
            created_at=account.created_at.astimezone(UTC),
        )
