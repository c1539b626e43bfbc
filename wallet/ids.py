"""Public identifiers: a type prefix and 26 random base32 characters (`wal_...`, `trf_...`)."""

import base64
import secrets


def new_id(prefix: str) -> str:
    raw = secrets.token_bytes(16)
    return f"{prefix}_{base64.b32encode(raw).decode().rstrip('=').lower()}"
