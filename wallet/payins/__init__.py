"""Pay-ins: money collected from a linked bank account into a wallet."""
