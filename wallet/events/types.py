"""The registry of event types the service emits, and how endpoints subscribe to them.

An endpoint subscribes to exact types (`transfer.created`), to a family (`deposit.*`) or to
everything (`*`). Later areas add their types here, next to the ones they emit.
"""

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

EVENT_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "transfer.created": "An internal transfer between two wallets was made.",
        "deposit.seen": "A deposit was seen on chain or at the bank, not yet final.",
        "deposit.credited": "A deposit is final and was credited to its wallet.",
        "deposit.orphaned": "A deposit seen earlier left the chain in a reorganisation.",
        "deposit.reversed": "A credited deposit was reversed.",
        "withdrawal.requested": "A withdrawal was requested and its amount is held.",
        "withdrawal.approved": "A withdrawal waiting for an operator was approved.",
        "withdrawal.rejected": "A withdrawal was rejected and its hold released.",
        "withdrawal.broadcast": "A withdrawal transaction was sent to its chain.",
        "withdrawal.confirmed": "A withdrawal is final.",
        "withdrawal.failed": "A withdrawal definitely failed and its hold was released.",
        "payin.created": "A fiat pay-in was started at the bank.",
        "payin.succeeded": "A fiat pay-in was received and credited.",
        "payin.failed": "A fiat pay-in failed.",
        "payout.created": "A fiat payout was sent to the bank.",
        "payout.paid": "A fiat payout was paid out by the bank.",
        "payout.failed": "A fiat payout failed and its hold was released.",
    }
)

ALL: Final = "*"
FAMILY_SUFFIX: Final = ".*"
FAMILIES: Final[frozenset[str]] = frozenset(name.split(".", 1)[0] for name in EVENT_TYPES)


def is_event_type(name: str) -> bool:
    return name in EVENT_TYPES


def is_subscription(pattern: str) -> bool:
    """Whether `pattern` names an event type, a family of them (`deposit.*`), or all (`*`)."""
    if pattern == ALL or pattern in EVENT_TYPES:
        return True
    return pattern.endswith(FAMILY_SUFFIX) and pattern.removesuffix(FAMILY_SUFFIX) in FAMILIES


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether a subscription to `patterns` covers `event_type`."""
    family = event_type.split(".", 1)[0] + FAMILY_SUFFIX
    return any(pattern in (event_type, family, ALL) for pattern in patterns)
