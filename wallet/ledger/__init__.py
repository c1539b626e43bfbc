"""The double-entry ledger: accounts, transactions of postings, holds, balances."""
