"""The assets area's errors."""

from wallet.errors import InvalidRequest


class UnknownAsset(InvalidRequest):
    problem = "unknown-asset"
    title = "The asset is not known"


class UnknownChain(InvalidRequest):
    problem = "unknown-chain"
    title = "The chain is not known"
