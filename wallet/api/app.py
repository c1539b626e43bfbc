"""The FastAPI application, built from a runtime by `create_app`."""

from fastapi import FastAPI
from sqlalchemy import text

from wallet.runtime import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="Hybrid wallet API", version="1")
    app.state.runtime = runtime

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> dict[str, str]:
        """Readiness: the database answers."""
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ready"}

    return app
