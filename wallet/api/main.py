"""The ASGI factory for uvicorn: each worker builds its runtime from the environment."""

from fastapi import FastAPI

from wallet.api.app import create_app
from wallet.runtime import build_runtime
from wallet.settings import load_settings


def build() -> FastAPI:
    return create_app(build_runtime(load_settings()))
