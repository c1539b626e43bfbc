"""One error hierarchy; each error carries its HTTP status and a stable problem type."""

from typing import Any, ClassVar

PROBLEM_BASE = "https://wallet.example/problems/"


class WalletError(Exception):
    """A business error that callers are expected to handle; never a 500."""

    status_code: ClassVar[int] = 400
    problem: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.problem

    def to_problem(self) -> dict[str, Any]:
        return {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status_code,
            "detail": self.detail,
            **self.extra,
        }


class InvalidRequest(WalletError):
    status_code = 422
    problem = "invalid-request"
    title = "The request is not valid"


class NotFound(WalletError):
    status_code = 404
    problem = "not-found"
    title = "Not found"


class Conflict(WalletError):
    status_code = 409
    problem = "conflict"
    title = "Conflict"


class DatabaseUnavailable(WalletError):
    """The database cannot be reached (down, restarting, out of connections): try again soon.

    The request did nothing, or what it did is what a retry under the same idempotency key
    answers.
    """

    status_code = 503
    problem = "service-unavailable"
    title = "The service is unavailable for a moment"
    retry_after = 1
    """Seconds a client should wait before trying again (the `Retry-After` header)."""


def error_from_problem(problem: dict[str, Any]) -> WalletError:
    """Rebuild a stored problem document (an idempotent replay of a failure) as its error."""
    slug = str(problem["type"]).removeprefix(PROBLEM_BASE)
    reserved = {"type", "title", "status", "detail"}
    extra = {key: value for key, value in problem.items() if key not in reserved}
    return _error_classes().get(slug, WalletError)(str(problem["detail"]), **extra)


def _error_classes() -> dict[str, type[WalletError]]:
    found: dict[str, type[WalletError]] = {}
    pending: list[type[WalletError]] = [WalletError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.problem, cls)
        pending.extend(cls.__subclasses__())
    return found
