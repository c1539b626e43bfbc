"""Idempotency keys: one outcome per (scope, key), replayed to retries."""
