"""The service's one settings object, read from `WALLET_*` environment variables at start."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class FeeRule(BaseModel):
    """A fee of `fixed` minor units plus `bps` basis points of the amount (rounded up)."""

    fixed: int = Field(default=0, ge=0)
    bps: int = Field(default=0, ge=0, le=10_000)


def _default_fiat_fees() -> dict[str, dict[str, FeeRule]]:
    return {
        "payin": {"USD": FeeRule(fixed=25, bps=50), "EUR": FeeRule(fixed=25, bps=50)},
        "payout": {"USD": FeeRule(fixed=100), "EUR": FeeRule(fixed=100)},
    }


class WithdrawalPolicy(BaseModel):
    """One asset's withdrawal rules; amounts are decimal strings in the asset's unit."""

    per_transaction: str | None = Field(default=None, description="Largest single withdrawal.")
    daily: str | None = Field(default=None, description="Most a wallet sends in any 24 hours.")
    approval_above: str | None = Field(
        default=None, description="Above this, one operator must approve."
    )
    dual_approval_above: str | None = Field(
        default=None, description="Above this, two different operators must approve."
    )
    fee_rate: str | None = Field(
        default=None,
        description=(
            "Tokens: how many of the asset's units one unit of the chain's native asset is "
            'worth ("3000": 1 ETH = 3000 USDC), to charge the network fee in the token.'
        ),
    )


class Settings(BaseSettings):
    """Everything a process needs to know about its environment.

    Built once by the process entry point (`load_settings()`), never at import time.
    """

    model_config = SettingsConfigDict(env_prefix="WALLET_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path(".wallet"),
        description=(
            "Where the embedded profile keeps its PostgreSQL data, its Anvil state and, when "
            "none is set, its webhook secrets key."
        ),
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

    # Deposit addresses: account xpubs per chain, else the seed from its keystore, else (the
    # embedded profile only) a mnemonic in the environment.
    deposit_xpubs: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "JSON object of chain name to account-level xpub (m/44'/60'/{chain_id}'): lets a "
            "process issue deposit addresses without the seed. Preferred for the API."
        ),
    )
    seed_keystore: Path | None = Field(
        default=None, description="The encrypted master seed keystore (custody.create_keystore)."
    )
    seed_password: SecretStr | None = Field(default=None, description="The keystore's password.")
    dev_mnemonic: SecretStr | None = Field(
        default=None,
        description=(
            "Embedded profile only: a BIP-39 mnemonic in the environment instead of a keystore. "
            "Never use it for real funds."
        ),
    )

    # Events out: the outbox relay, the Celery queue and webhook deliveries.
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

    # Crypto withdrawals.
    withdrawal_policies: dict[str, WithdrawalPolicy] = Field(
        default_factory=dict,
        description="JSON object of asset code to its limits, approval thresholds and fee rate.",
    )
    withdrawal_blocklist: list[str] = Field(
        default_factory=list, description="Addresses no withdrawal may be sent to (JSON list)."
    )
    withdrawal_max_fee_per_gas: int = Field(
        default=500 * 10**9, gt=0, description="Wei per gas a withdrawal never pays above."
    )
    withdrawal_broadcast_interval: float = Field(
        default=1.0, gt=0, description="Seconds between runs of the withdrawal broadcaster."
    )
    withdrawal_bump_after: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a sent transaction may stay unmined before a fee bump.",
    )

    # Fiat: the bank provider (the sandbox bank's HTTP API, or the in-memory fake of unit
    # tests), its webhooks, and the fees per rail and currency.
    bank_provider: Literal["sandbox", "memory"] = Field(
        default="sandbox", description="`sandbox`: the sandbox bank over HTTP; `memory`: a fake."
    )
    bank_url: str = Field(
        default="http://127.0.0.1:8700",
        description="The sandbox bank's API (`wallet fiat-sandbox`).",
    )
    bank_api_key: SecretStr = Field(
        default=SecretStr("sk_sandbox_local"), description="Our API key at the bank."
    )
    bank_webhook_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Standard Webhooks secret (`whsec_...`) the bank signs its events with; without it "
            "the fiat endpoints answer 503. `wallet run` makes one when unset."
        ),
    )
    bank_timeout: float = Field(
        default=10.0, gt=0, description="Seconds before a bank call's outcome is unknown."
    )
    bank_resolve_interval: float = Field(
        default=5.0, gt=0, description="Seconds between passes resolving unknown bank outcomes."
    )
    bank_resolve_after: float = Field(
        default=10.0,
        ge=0,
        description="A payment left creating or unknown this many seconds is asked about.",
    )
    fiat_fees: dict[str, dict[str, FeeRule]] = Field(
        default_factory=_default_fiat_fees,
        description='Per rail (`payin`, `payout`) and currency: {"fixed": minor units, "bps": n}.',
    )


def load_settings() -> Settings:
    """Read the settings from the environment (and `.env`)."""
    return Settings()
