"""The service's one settings object, read from `WALLET_*` environment variables at start."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a process needs to know about its environment.

    Built once by the process entry point (`load_settings()`), never at import time.
    """

    model_config = SettingsConfigDict(env_prefix="WALLET_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path(".wallet"),
        description="Where the embedded profile keeps its PostgreSQL data and Anvil state.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL; when unset, an embedded PostgreSQL under data_dir is used.",
    )
    database_pool_size: int = Field(default=10, ge=1)
    broker_url: SecretStr | None = Field(
        default=None,
        description="Celery broker URL (Redis); when unset, kombu's SQL transport on the database.",
    )
    assets_file: Path | None = Field(
        default=None, description="A TOML asset catalogue replacing the built-in one."
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1)


def load_settings() -> Settings:
    """Read the settings from the environment (and `.env`)."""
    return Settings()
