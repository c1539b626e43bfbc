"""The deposits area's errors: refused requests, and states a person must look at."""

from wallet.errors import NotFound, WalletError


class DepositAddressesUnavailable(WalletError):
    status_code = 503
    problem = "deposit-addresses-unavailable"
    title = "This service is not configured to issue deposit addresses on this chain"


class UnknownDeposit(NotFound):
    problem = "unknown-deposit"
    title = "No such deposit"


class AddressBookError(ValueError):
    """The deposit address configuration is unusable (a process-start error, not a request's)."""


class InconsistentChainState(RuntimeError):
    """The stored chain state contradicts what the follower reports; a person must look."""


class WatcherHalted(RuntimeError):
    """The watcher cannot go on safely by itself; an operator must look."""


class ReorgBeyondWindow(WatcherHalted):
    """Every stored header was replaced: the reorg is deeper than the header window."""


class StaleWindow(RuntimeError):
    """The stored cursor moved under this watcher (another one wrote): reload and go on."""


class LeaseLost(RuntimeError):
    """The lease connection broke, so the lock may be someone else's now: stop writing."""


class ResumeRefused(ValueError):
    """An operator's resume that cannot be done as asked; nothing was changed."""
