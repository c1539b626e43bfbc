"""Field types shared by the request schemas: ids, texts PostgreSQL can store, metadata, amounts.

Each type's OpenAPI schema states exactly what the server accepts, so that any request valid
by the schema passes validation and any other is refused with a 422 problem.
"""

import re
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from wallet.api.contract import CATALOGUE_MARKER

# `wallet.ids.new_id`: a prefix and 26 base32 characters (16 random bytes), lower case.
_RANDOM_PART = "[a-z2-7]{26}"
# A transfer is named by its ledger transaction's number.
TRANSFER_ID_PATTERN = "^trf_[0-9]{1,18}$"
# Texts are stored in PostgreSQL, which holds neither NUL characters nor lone surrogates; the
# pattern says the first, the second is no Unicode text (`storable` refuses both).
STORABLE_PATTERN = "^[^\\u0000]*$"
# A positive decimal below 2**256 minor units at 18 decimals: at most 59 significant whole digits.
AMOUNT_PATTERN = "^(?:0*[1-9][0-9]{0,58}(?:\\.[0-9]+)?|0+\\.[0-9]*[1-9][0-9]*)$"

# RFC 3339's date-time, as JSON Schema's `date-time` format means it, without what Python's
# datetime cannot hold (the year 0, leap seconds) and without pydantic's looser forms (a Unix
# time, a space for the `T`).
TIMESTAMP_PATTERN = (
    "^(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-[0-9]{2}-[0-9]{2}"
    "[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9](?:\\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def id_pattern(prefix: str) -> str:
    """The pattern of the ids `wallet.ids.new_id(prefix)` makes."""
    return f"^{prefix}_{_RANDOM_PART}$"


def _storable(text: str) -> str:
    """Refuse what PostgreSQL cannot store in text: NUL characters and lone surrogates."""
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode") from None
    return text


storable = AfterValidator(_storable)


def _rfc3339(value: object) -> object:
    if not isinstance(value, str) or re.fullmatch(TIMESTAMP_PATTERN, value) is None:
        raise ValueError("must be an RFC 3339 date-time, such as 2026-01-31T12:00:00Z")
    return value


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
_STORABLE: dict[str, Any] = {"pattern": STORABLE_PATTERN}
# Where the catalogue fixes the values, `wallet.api.contract` lists them in the schema.
CATALOGUE_ASSETS: dict[str, Any] = {CATALOGUE_MARKER: "assets"}
CATALOGUE_CHAINS: dict[str, Any] = {CATALOGUE_MARKER: "chains"}
CATALOGUE_FIAT_ASSETS: dict[str, Any] = {CATALOGUE_MARKER: "fiat_assets"}

WalletId = Annotated[str, Field(pattern=id_pattern("wal"))]
BankAccountId = Annotated[str, Field(pattern=id_pattern("bac"))]
WalletIdPath = Annotated[
    str, Path(pattern=id_pattern("wal"), description="A wallet id (`wal_...`).")
]
WalletFilter = Annotated[
    str | None, Query(pattern=id_pattern("wal"), description="Only this wallet's.")
]
OwnerRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    storable,
    Field(
        json_schema_extra=_STORABLE,
        description="The app's own reference for the wallet's owner, such as its user id.",
    ),
]
Memo = Annotated[
    str, StringConstraints(max_length=500), storable, Field(json_schema_extra=_STORABLE)
]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40), storable]
MetadataValue = Annotated[str, StringConstraints(max_length=500), storable]
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(max_length=50),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": 50,
            "propertyNames": {"minLength": 1, "maxLength": 40, **_STORABLE},
            "additionalProperties": {"type": "string", "maxLength": 500, **_STORABLE},
            "description": "Up to 50 string keys (40 characters) with string values (500), "
            "yours to use.",
        }
    ),
]
AssetCode = Annotated[str, Field(examples=["USD", "USDC"], json_schema_extra=CATALOGUE_ASSETS)]
FiatAssetCode = Annotated[
    str, Field(examples=["USD", "EUR"], json_schema_extra=CATALOGUE_FIAT_ASSETS)
]
ChainName = Annotated[str, Field(examples=["devnet"], json_schema_extra=CATALOGUE_CHAINS)]
# The pattern is documentation: `wallet.money.parse_amount` enforces it with its own problem
# types (`invalid-amount`, `amount-not-positive`, ...).
Amount = Annotated[
    str,
    StringConstraints(min_length=1, max_length=120),
    Field(
        json_schema_extra={"pattern": AMOUNT_PATTERN},
        examples=["12.50"],
        description="A positive decimal string in the asset's unit, at most its decimals; "
        "never a number.",
    ),
]
