"""Field types shared by the request schemas: ids, texts PostgreSQL can store, metadata."""

from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, Field, StringConstraints

ID_PATTERN = r"^[a-z]+_[a-z0-9]+$"


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

Id = Annotated[str, StringConstraints(max_length=64, pattern=ID_PATTERN)]
WalletIdPath = Annotated[
    str, Path(max_length=64, pattern=ID_PATTERN, description="A wallet id (`wal_...`).")
]
WalletFilter = Annotated[
    str | None, Query(max_length=64, pattern=ID_PATTERN, description="Only this wallet's.")
]
OwnerRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    storable,
    Field(description="The app's own reference for the wallet's owner, such as its user id."),
]
Memo = Annotated[str, StringConstraints(max_length=500), storable]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40), storable]
MetadataValue = Annotated[str, StringConstraints(max_length=500), storable]
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(
        max_length=50,
        description="Up to 50 string keys (40 characters) with string values (500), yours to use.",
    ),
]
AssetCode = Annotated[
    str, StringConstraints(min_length=1, max_length=32), Field(examples=["USD", "USDC"])
]
Amount = Annotated[
    str,
    StringConstraints(min_length=1, max_length=120),
    Field(
        examples=["12.50"],
        description="A decimal string in the asset's unit, at most its decimals; never a number.",
    ),
]
