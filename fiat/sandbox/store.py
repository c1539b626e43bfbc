"""The sandbox bank's own storage: one SQLite file, written in short IMMEDIATE transactions.

WAL with `synchronous=FULL`: a committed change survives a killed process or a power cut,
and a transaction cut short leaves nothing behind. Times used for scheduling are Unix seconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bank_accounts (
    token TEXT PRIMARY KEY,
    holder_name TEXT NOT NULL,
    last4 TEXT NOT NULL,
    currency TEXT NOT NULL,
    country TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    bank_account TEXT NOT NULL REFERENCES bank_accounts (token),
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    failure_code TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (kind, idempotency_key)
);
-- The one status change each payment is waiting for, and when it is due.
CREATE TABLE IF NOT EXISTS transitions (
    payment_id TEXT PRIMARY KEY REFERENCES payments (id),
    status TEXT NOT NULL,
    due_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_due ON transitions (due_at);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
-- Outbox of webhook events, written with the change they announce.
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    delivered_at REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS events_due ON events (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
"""


def open_store(path: Path | str) -> sqlite3.Connection:
    """Open (creating it and its directory if needed) the sandbox database at `path`
    (":memory:" for none)."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.executescript(_SCHEMA)
    return connection


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed if the block returns, rolled back if it raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
