"""The apikeys area's errors."""

from wallet.errors import InvalidRequest, NotFound


class UnknownApiKey(NotFound):
    problem = "unknown-api-key"
    title = "No such API key"


class NoScopes(InvalidRequest):
    problem = "no-scopes"
    title = "An API key needs at least one scope"
