"""The transfers area's errors."""

from wallet.errors import InvalidRequest, NotFound


class SameWallet(InvalidRequest):
    problem = "same-source-and-destination"
    title = "A transfer needs two different wallets"


class UnknownTransfer(NotFound):
    problem = "unknown-transfer"
    title = "No such transfer"
