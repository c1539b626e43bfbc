"""The ASGI factory for uvicorn: each worker builds its runtime from the environment."""

from fastapi import FastAPI

from wallet.api.app import create_app
from wallet.runtime import build_runtime
from wallet.settings import load_settings

# Seconds an idle connection stays open: longer than clients keep theirs (httpx 5 s, many
# proxies 60 s), so that no client sends a request on a connection the server is closing.
KEEP_ALIVE_SECONDS = 75


def build() -> FastAPI:
    return create_app(build_runtime(load_settings()))
