"""`python -m wallet ...`: the same as the `wallet` command."""

from wallet.cli import main

main()
