"""Crypto deposits: per-wallet deposit addresses, and the watcher that records, confirms and
credits transfers to them exactly once, following reorgs."""
