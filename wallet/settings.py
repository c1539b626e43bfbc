"""The service's one settings object, read from `WALLET_*` environment variables at start."""

from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fiat import MAX_PAYINS_PER_CALL
from wallet.assets.service import load_catalogue

# Anvil's and Hardhat's default chain id, and the second devnet's.
DEVNET_CHAIN_IDS = frozenset({31337, 31338})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ChainSourceKind(StrEnum):
    """Where the watchers read chains from."""

    RPC = "rpc"
    """`chains.ChainFollower` over each chain's `rpc_url`."""
    FAKE = "fake"
    """`chains.FakeChain`: an in-memory chain that nothing is ever mined on."""


class AddressIssuerKind(StrEnum):
    """What issues deposit addresses."""

    HD = "hd"
    """BIP-32 from account xpubs (`deposit_xpubs`), or from the seed (keystore, dev mnemonic)."""
    FAKE = "fake"
    """`FakeAddressIssuer`: made-up addresses nobody holds a key for."""


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


class SweepPolicy(BaseModel):
    """One asset's sweep rules; amounts are decimal strings in the asset's unit."""

    threshold: str | None = Field(
        default=None, description="A deposit address holding at least this is swept."
    )
    ceiling: str | None = Field(
        default=None, description="The hot wallet's excess above this goes to the cold address."
    )


class Settings(BaseSettings):
    """Everything a process needs to know about its environment.

    Built once by the process entry point (`load_settings()`), never at import time.
    """

    model_config = SettingsConfigDict(
        env_prefix="WALLET_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    environment: Environment = Field(
        default=Environment.DEVELOPMENT,
        description=(
            "production refuses to start with development secrets: a mnemonic in the "
            "environment, a generated webhook secrets key, a devnet chain, a fake port."
        ),
    )

    # Ports: which implementation a process uses, chosen when it starts. The bank provider
    # (fiat) is chosen here too.
    chain_source: ChainSourceKind = Field(
        default=ChainSourceKind.RPC, description="rpc, or fake (an empty in-memory chain)."
    )
    address_issuer: AddressIssuerKind = Field(
        default=AddressIssuerKind.HD, description="hd, or fake (made-up deposit addresses)."
    )

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
    database_timeout: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Seconds to wait for a database connection (a free pooled one, or a new one) "
            "before giving up: an API request is then answered 503."
        ),
    )
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
    api_max_body_bytes: int = Field(
        default=512 * 1024,
        ge=1024,
        description=(
            "Largest request body the API reads, in bytes; a larger one is answered 413. Every "
            "request the schema allows fits the default, even with metadata at its limits and "
            "every character written as a JSON escaped surrogate pair (about 340 KB)."
        ),
    )

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

    watcher_window_size: int = Field(
        default=256,
        ge=2,
        description=(
            "Block headers kept per chain: the watcher follows reorgs up to this depth and halts "
            "on deeper ones; must exceed every chain's confirmations."
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
    celery_queue: str = Field(
        default="wallet",
        description=(
            "The Celery queue of the relay and the sweep; webhook attempts have their own, "
            "this name with `.webhooks` appended."
        ),
    )
    outbox_relay_interval: float = Field(default=1.0, gt=0, description="Seconds between relays.")
    outbox_relay_batch: int = Field(default=200, ge=1, le=10_000)
    webhook_sweep_interval: float = Field(
        default=2.0, gt=0, description="Seconds between sweeps for due deliveries."
    )
    webhook_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds an attempt may take in all: resolving, connecting, sending, "
        "and reading the answer's status and headers.",
    )
    webhook_allow_private_targets: bool | None = Field(
        default=None,
        description=(
            "Whether webhooks may go to loopback, private, link-local and other non-public "
            "addresses; when unset, allowed in development and refused in production."
        ),
    )
    webhook_endpoint_concurrency: int = Field(
        default=2, ge=1, description="Attempts in flight to one endpoint at most."
    )
    webhook_tenant_concurrency: int = Field(
        default=4,
        ge=1,
        description="Attempts in flight to one tenant's endpoints at most, together.",
    )
    webhook_endpoint_pause_after: int = Field(
        default=5,
        ge=1,
        description="Failed attempts in a row after which an endpoint pauses, on the retry "
        "schedule, its deliveries waiting meanwhile.",
    )
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
    withdrawal_fee_quote_max_age: float = Field(
        default=1.0,
        ge=0,
        description="Seconds a chain's network fee quote is shared by withdrawal requests "
        "(0: each request asks the node).",
    )
    withdrawal_broadcast_interval: float = Field(
        default=1.0, gt=0, description="Seconds between runs of the withdrawal broadcaster."
    )
    withdrawal_bump_after: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Seconds a sent transaction (a withdrawal's or a sweep's) may stay unmined "
            "before a fee bump."
        ),
    )

    # Sweeps and hot/cold.
    sweep_policies: dict[str, SweepPolicy] = Field(
        default_factory=dict,
        description="JSON object of asset code to its sweep threshold and hot wallet ceiling.",
    )
    cold_addresses: dict[str, str] = Field(
        default_factory=dict,
        description="JSON object of chain name to the cold address (no key held here).",
    )
    sweep_interval: float = Field(
        default=60.0, gt=0, description="Seconds between runs of the sweeper."
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
    payin_batch: int = Field(
        default=4,
        ge=1,
        le=MAX_PAYINS_PER_CALL,
        description=(
            "Pay-in requests one API process takes to the bank in one call, one call at a "
            "time; those that come while a call is under way wait and go together in the next. "
            "It bounds how fast new pay-ins enter against the bank's events for those before "
            "them; raise it for a bank whose calls take long."
        ),
    )
    payin_turn_wait: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Seconds a pay-in request waits for its call to the bank to start; then it is "
            "answered 503 `bank-unavailable` with nothing started."
        ),
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

    @property
    def webhook_queue(self) -> str:
        return f"{self.celery_queue}.webhooks"

    @property
    def webhook_private_targets_allowed(self) -> bool:
        if self.webhook_allow_private_targets is None:
            return self.environment is Environment.DEVELOPMENT
        return self.webhook_allow_private_targets

    @model_validator(mode="after")
    def _no_development_secrets_in_production(self) -> Self:
        if self.environment is Environment.PRODUCTION:
            refusals = development_secrets(self)
            if refusals:
                lines = "\n".join(f"  - {refusal}" for refusal in refusals)
                raise ValueError(
                    f"WALLET_ENVIRONMENT=production refuses development settings:\n{lines}"
                )
        return self


def development_secrets(settings: Settings) -> list[str]:
    """What in `settings` (and the catalogue it names) is fit for development only."""
    refusals = []
    if settings.dev_mnemonic is not None:
        refusals.append(
            "WALLET_DEV_MNEMONIC is set: a seed in the environment is for development only; "
            "use WALLET_DEPOSIT_XPUBS or WALLET_SEED_KEYSTORE"
        )
    if settings.webhook_secrets_key is None:
        refusals.append(
            "WALLET_WEBHOOK_SECRETS_KEY is not set: a key generated into the data directory is "
            "for development only; set 32 random bytes in base64"
        )
    for port, kind in (
        ("WALLET_CHAIN_SOURCE", settings.chain_source),
        ("WALLET_ADDRESS_ISSUER", settings.address_issuer),
    ):
        if kind == "fake":
            refusals.append(f"{port}=fake: fakes are for tests and development only")
    if settings.bank_provider == "memory":
        refusals.append("WALLET_BANK_PROVIDER=memory: fakes are for tests and development only")
    for chain in load_catalogue(settings.assets_file).chains.values():
        if chain.local or chain.chain_id in DEVNET_CHAIN_IDS:
            refusals.append(
                f"chain {chain.name} (chain id {chain.chain_id}) is a local devnet; "
                "set WALLET_ASSETS_FILE to a catalogue of real chains"
            )
    return refusals


class SettingsRefused(SystemExit):
    """The settings cannot run a process; its text says why, for the operator."""


def load_settings() -> Settings:
    """Read the settings from the environment (and `.env`); exit with the reasons if refused."""
    try:
        return Settings()
    except ValidationError as error:
        reasons = "\n".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: "
            + str(e["msg"]).removeprefix("Value error, ")
            for e in error.errors()
        )
        raise SettingsRefused(f"wallet: refusing to start.\n{reasons}") from None
