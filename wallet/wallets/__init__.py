"""Tenants and their users' wallets."""
