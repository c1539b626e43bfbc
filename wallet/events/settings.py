"""Settings of events out, read from `WALLET_*` variables like the main settings.

They belong in `wallet.settings.Settings`; until they are merged there, this class reads them
itself (built by process entry points and the tasks' process context, never at import).
"""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EventsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WALLET_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path(".wallet"),
        description="Where the embedded profile keeps its webhook secrets key when none is set.",
    )
    webhook_secrets_key: SecretStr | None = Field(
        default=None,
        description=(
            "32 bytes in base64: encrypts the webhook signing secrets at rest. Required when "
            "processes run on more than one machine; when unset, a key is generated once in "
            "data_dir/webhook-secrets.key."
        ),
    )
    celery_queue: str = Field(default="wallet", description="The Celery queue of our tasks.")
    outbox_relay_interval: float = Field(default=1.0, gt=0, description="Seconds between relays.")
    outbox_relay_batch: int = Field(default=200, ge=1, le=10_000)
    webhook_sweep_interval: float = Field(
        default=2.0, gt=0, description="Seconds between sweeps for due deliveries."
    )
    webhook_timeout: float = Field(default=10.0, gt=0, description="Seconds per HTTP attempt.")
    webhook_lease: float = Field(
        default=60.0, gt=0, description="Seconds a worker owns a delivery it is attempting."
    )
    webhook_requeue_after: float = Field(
        default=120.0,
        gt=0,
        description="Seconds after which a due delivery whose task never ran is sent again.",
    )
    webhook_retry_base: float = Field(default=5.0, gt=0, description="First retry delay.")
    webhook_retry_factor: float = Field(default=6.0, ge=1, description="Growth per retry.")
    webhook_retry_max: float = Field(default=3600.0, gt=0, description="Longest retry delay.")
    webhook_give_up_after: float = Field(
        default=86_400.0,
        ge=0,
        description="Seconds after the first attempt before a failing delivery is given up.",
    )
