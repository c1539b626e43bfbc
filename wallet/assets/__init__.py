"""Assets and chains: the catalogue of what the service holds, and its API."""
