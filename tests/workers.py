"""What each pytest-xdist worker has of its own: a database (named by its pid) and a Redis db."""

import os
from urllib.parse import urlsplit, urlunsplit

REDIS_DATABASES = 16  # Redis's default `databases`


def worker_index() -> int:
    """0 for the first xdist worker (`gw0`), 1 for the next, ...; 0 without xdist."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def worker_redis_url(configured: str) -> str:
    """The configured Redis URL names the first worker's db; each next worker takes the next
    one. Workers past the last db share the first: Celery queue names are unique per test, so
    they never see each other's messages there."""
    parts = urlsplit(configured)
    db = int(parts.path.strip("/") or 0) + worker_index()
    if db >= REDIS_DATABASES:
        return configured
    return urlunsplit(parts._replace(path=f"/{db}"))
