"""The bank provider as the core sees it: which one (settings), fees, and its inbound events."""
