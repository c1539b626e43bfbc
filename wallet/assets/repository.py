"""The assets' one statement: the catalogue stored for the ledger's foreign keys."""

from sqlalchemy import text
from sqlalchemy.orm import Session

_STORE_ASSET = text(
    "INSERT INTO assets (code, kind, decimals, chain) "
    "VALUES (:code, :kind, :decimals, :chain) ON CONFLICT (code) DO UPDATE "
    "SET kind = excluded.kind, decimals = excluded.decimals, chain = excluded.chain"
)


def store_asset(session: Session, code: str, kind: str, decimals: int, chain: str | None) -> None:
    params = {"code": code, "kind": kind, "decimals": decimals, "chain": chain}
    session.execute(_STORE_ASSET, params)
