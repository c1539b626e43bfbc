"""Instant internal transfers between wallets (payments, tips)."""
