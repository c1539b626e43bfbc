"""The withdrawals area's errors: each refused request a problem type of its own."""

from wallet.errors import Conflict, InvalidRequest, NotFound, WalletError


class UnknownWithdrawal(NotFound):
    problem = "unknown-withdrawal"
    title = "No such withdrawal"


class AssetNotOnChain(InvalidRequest):
    problem = "asset-not-on-chain"
    title = "The asset cannot be withdrawn on this chain"


class NoFeeRate(InvalidRequest):
    problem = "withdrawal-fee-rate-missing"
    title = "The token has no fee rate configured, so its network fee cannot be charged"


class InvalidAddress(InvalidRequest):
    problem = "invalid-address"
    title = "The destination is not a 20-byte hex address"


class ChecksumMismatch(InvalidRequest):
    problem = "address-checksum-mismatch"
    title = "The address mixes letter cases but is not EIP-55 checksummed"


class ZeroAddress(InvalidRequest):
    problem = "zero-address"
    title = "Funds sent to the zero address are lost"


class BlockedAddress(InvalidRequest):
    problem = "blocked-address"
    title = "Withdrawals to this address are not allowed"


class OwnWalletDestination(InvalidRequest):
    problem = "destination-is-own-wallet"
    title = "The destination is this wallet's own deposit address"


class PerTransactionLimitExceeded(InvalidRequest):
    problem = "withdrawal-limit-exceeded"
    title = "The amount is above the largest withdrawal allowed for the asset"


class DailyLimitExceeded(InvalidRequest):
    problem = "daily-withdrawal-limit-exceeded"
    title = "The wallet's withdrawals of the last 24 hours would exceed the asset's daily limit"


class FeeQuoteUnavailable(WalletError):
    status_code = 503
    problem = "fee-quote-unavailable"
    title = "The network fee cannot be quoted now; try again later"


class NotCancellable(Conflict):
    problem = "withdrawal-not-cancellable"
    title = "Only a withdrawal not yet signed can be cancelled"


class NotAwaitingApproval(Conflict):
    problem = "withdrawal-not-awaiting-approval"
    title = "The withdrawal is not waiting for an approval"


class RequesterCannotApprove(WalletError):
    status_code = 403
    problem = "requester-cannot-approve"
    title = "The key that requested a withdrawal cannot approve it"


class AlreadyApproved(Conflict):
    problem = "already-approved"
    title = "This key has approved the withdrawal already"
