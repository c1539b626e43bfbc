"""Bank accounts linked to wallets: the provider's token and what a person needs to see."""
