"""The events area's errors."""


class UnknownEventType(ValueError):
    """An event type missing from the registry: a programming error, not a request's."""
