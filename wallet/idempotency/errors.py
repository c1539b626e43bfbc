"""The idempotency area's errors."""

from wallet.errors import Conflict


class IdempotencyConflict(Conflict):
    problem = "idempotency-key-reused"
    title = "The idempotency key was used with a different request"
