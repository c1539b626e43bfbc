"""Crypto withdrawals: requested over the API, signed and sent by the worker, confirmed by the
watcher."""
