"""API keys: each bound to one tenant, scoped, stored only as a hash of its secret."""
