"""Tenants: the apps the service holds wallets for."""
