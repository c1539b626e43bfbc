"""Payouts: money sent from a wallet to a linked bank account (a withdrawal to a bank)."""
