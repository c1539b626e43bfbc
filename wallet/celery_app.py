"""The Celery app of the worker and beat processes, built from the settings at start.

`create_app(settings)` is what `wallet worker` and `wallet beat` use. The module-level `app`
exists for Celery's own command line (`celery -A wallet.celery_app worker`): it reads its
settings from the environment only when Celery first needs its configuration, at process start.

The broker is `WALLET_BROKER_URL` (Redis), or else kombu's SQLAlchemy transport on the
service's own PostgreSQL (the embedded profile: no system package needed), in the form of
`wallet.sql_broker`, which reconnects after a database restart.
"""

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, TypeVar

from celery import Celery, signals
from pydantic import SecretStr

from chains.devnet import stop_with_parent
from wallet.banking.service import open_bank
from wallet.payins.tasks import RESOLVE_PAYINS, BankTaskContext
from wallet.payins.tasks import register_tasks as register_payin_tasks
from wallet.payouts.tasks import SEND_PAYOUTS
from wallet.payouts.tasks import register_tasks as register_payout_tasks
from wallet.runtime import Runtime, build_runtime, database_url
from wallet.settings import Settings, load_settings
from wallet.sweeps import tasks as sweeps
from wallet.sweeps.service import SweepRules
from wallet.sweeps.tasks import SWEEP, SweepContext
from wallet.webhooks.attempt import DeliveryOptions
from wallet.webhooks.egress import webhook_client
from wallet.webhooks.secrets import SecretBox
from wallet.webhooks.tasks import (
    DELIVER_WEBHOOK,
    RELAY_OUTBOX,
    SWEEP_WEBHOOK_DELIVERIES,
    TaskContext,
    register_tasks,
)
from wallet.withdrawals import tasks as withdrawals
from wallet.withdrawals.tasks import BROADCAST_WITHDRAWALS, BroadcastContext, BroadcastOptions

T = TypeVar("T")

APP_NAME: Final = "wallet"
# Without a broker URL: kombu's SQL transport on the service's database, made to outlive a
# database restart.
SQL_TRANSPORT: Final = "wallet.sql_broker:Transport"


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app with the service's tasks and periodic jobs.

    Without settings, they are read from the environment the first time the app's
    configuration is needed, never at import.
    """
    configuration = _Configuration(settings)
    app = Celery(APP_NAME, set_as_current=False)
    app.add_defaults(configuration.celery_config)
    runtime = _PerProcess(lambda: build_runtime(configuration.settings()))
    register_tasks(app, _PerProcess(lambda: _task_context(configuration.settings(), runtime())))
    withdrawals.register_tasks(app, _PerProcess(lambda: _broadcast_context(runtime())))
    sweeps.register_tasks(app, _PerProcess(lambda: sweep_context(runtime())))
    banking = _PerProcess(lambda: _bank_context(runtime()))
    register_payin_tasks(app, banking)
    register_payout_tasks(app, banking)
    return app


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's configuration for the given settings (database URL already resolved)."""
    broker = broker_url(settings)
    if settings.broker_url is None:
        transport: str | None = SQL_TRANSPORT
        # kombu hands the SQL transport's options to create_engine.
        transport_options: dict[str, Any] = {
            "pool_pre_ping": True,
            "connect_args": {"connect_timeout": 2},
        }
    else:
        transport = None
        transport_options = {"socket_connect_timeout": 5, "socket_timeout": 30}
    return {
        "broker_url": broker,
        "broker_transport": transport,
        "broker_transport_options": transport_options,
        # A broker outage delays work and never ends a process: retry the connection forever.
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_default_queue": settings.celery_queue,
        # Attempts wait on other people's servers: on a queue of their own, a backlog of
        # them never delays the relay or the sweep on a worker that serves only those.
        "task_routes": {DELIVER_WEBHOOK: {"queue": settings.webhook_queue}},
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_publish_retry_policy": {
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        "enable_utc": True,
        "timezone": "UTC",
        # The schedule is a few fixed intervals: nothing worth a schedule file on disk.
        "beat_scheduler": "celery.beat:Scheduler",
        "beat_schedule": {
            "relay-outbox": {
                "task": RELAY_OUTBOX,
                "schedule": settings.outbox_relay_interval,
                "options": {"expires": max(10.0, 10 * settings.outbox_relay_interval)},
            },
            "sweep-webhook-deliveries": {
                "task": SWEEP_WEBHOOK_DELIVERIES,
                "schedule": settings.webhook_sweep_interval,
                "options": {"expires": max(10.0, 10 * settings.webhook_sweep_interval)},
            },
            "broadcast-withdrawals": {
                "task": BROADCAST_WITHDRAWALS,
                "schedule": settings.withdrawal_broadcast_interval,
                "options": {"expires": max(10.0, 10 * settings.withdrawal_broadcast_interval)},
            },
            "sweep": {
                "task": SWEEP,
                "schedule": settings.sweep_interval,
                "options": {"expires": max(10.0, settings.sweep_interval)},
            },
            "send-payouts": {
                "task": SEND_PAYOUTS,
                "schedule": settings.bank_resolve_interval,
                "options": {"expires": max(10.0, 10 * settings.bank_resolve_interval)},
            },
            "resolve-payins": {
                "task": RESOLVE_PAYINS,
                "schedule": settings.bank_resolve_interval,
                "options": {"expires": max(10.0, 10 * settings.bank_resolve_interval)},
            },
        },
    }


def broker_url(settings: Settings) -> str:
    """The configured broker, or the service's database (for `SQL_TRANSPORT`)."""
    if settings.broker_url is not None:
        return settings.broker_url.get_secret_value()
    # A driver in the scheme would be read by kombu as a transport; psycopg is SQLAlchemy's
    # default for postgresql:// anyway.
    return database_url(settings).replace("postgresql+psycopg://", "postgresql://", 1)


def run_worker(
    settings: Settings,
    *,
    concurrency: int | None = None,
    pool: str | None = None,
    beat: bool = False,
    queues: Sequence[str] | None = None,
    loglevel: str = "info",
) -> int:
    """Run a Celery worker in this process (`wallet worker`); returns its exit status.

    It consumes `queues`, by default both: the relay and sweep queue (`celery_queue`) and the
    webhook attempts' (`webhook_queue`). `beat` embeds the scheduler (development). Celery's
    worker may stop on its own after a broker failure it cannot recover from; the status is
    then non-zero, for the supervisor that restarts it.
    """
    consumed = queues or (settings.celery_queue, settings.webhook_queue)
    argv = ["worker", f"--loglevel={loglevel}", f"--queues={','.join(consumed)}"]
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    if pool is not None:
        argv.append(f"--pool={pool}")
    if beat:
        argv.append("--beat")
    return _run(create_app(settings), argv)


def _stop_embedded_beat_with_its_worker(**_: object) -> None:
    # `--beat` forks the scheduler from the worker's main thread: without this, a worker
    # killed outright leaves its beat running, and the worker started again adds a second one.
    worker = os.getpid()

    def stop_with_worker(**_: object) -> None:
        stop_with_parent(signal.SIGTERM, worker)

    signals.beat_embedded_init.connect(stop_with_worker, weak=False)


signals.worker_init.connect(_stop_embedded_beat_with_its_worker, weak=False)


def run_beat(settings: Settings, *, loglevel: str = "info") -> int:
    """Run Celery beat in this process (`wallet beat`): the outbox relay and delivery sweep."""
    return _run(create_app(settings), ["beat", f"--loglevel={loglevel}"])


def _run(app: Celery, argv: list[str]) -> int:
    # Celery.start returns the command's exit status, which Celery.worker_main drops.
    status = app.start(argv)
    return int(status or 0)


class _Configuration:
    """The settings an app runs with: given, or read from the environment on first need.

    The database URL is resolved once here (starting the embedded PostgreSQL if that is the
    profile), before the worker forks, so its processes share one URL.
    """

    def __init__(self, settings: Settings | None) -> None:
        self._given = settings
        self._settings: Settings | None = None
        self._lock = threading.Lock()

    def settings(self) -> Settings:
        with self._lock:
            if self._settings is None:
                settings = self._given or load_settings()
                url = database_url(settings)
                self._settings = settings.model_copy(update={"database_url": SecretStr(url)})
            return self._settings

    def celery_config(self) -> dict[str, Any]:
        return celery_config(self.settings())


class _PerProcess(Generic[T]):
    """Builds a value on first use in each process (after the worker's fork)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built: tuple[int, T] | None = None

    def __call__(self) -> T:
        with self._lock:
            if self._built is None or self._built[0] != os.getpid():
                self._built = (os.getpid(), self._build())
            return self._built[1]


def _task_context(settings: Settings, runtime: Runtime) -> TaskContext:
    # httpx logs every request's URL at INFO; endpoint URLs may carry the app's tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return TaskContext(
        sessions=runtime.sessions,
        secrets=SecretBox.from_settings(settings),
        client=webhook_client(
            allow_private=settings.webhook_private_targets_allowed,
            timeout=settings.webhook_timeout,
        ),
        settings=settings,
        delivery=DeliveryOptions.from_settings(settings),
        sql_broker=settings.broker_url is None,
    )


def _broadcast_context(runtime: Runtime) -> BroadcastContext:
    return BroadcastContext(
        engine=runtime.engine,
        sessions=runtime.sessions,
        catalogue=runtime.catalogue,
        hot_wallets=withdrawals.hot_wallets(runtime.settings, runtime.catalogue),
        options=BroadcastOptions.from_settings(runtime.settings),
    )


def sweep_context(runtime: Runtime) -> SweepContext:
    return SweepContext(
        engine=runtime.engine,
        sessions=runtime.sessions,
        catalogue=runtime.catalogue,
        chains=sweeps.custody_chains(runtime.settings, runtime.catalogue),
        rules=SweepRules.from_settings(runtime.settings, runtime.catalogue),
    )


def _bank_context(runtime: Runtime) -> BankTaskContext:
    return BankTaskContext(
        sessions=runtime.sessions,
        bank=open_bank(runtime.settings),
        catalogue=runtime.catalogue,
        resolve_after=runtime.settings.bank_resolve_after,
    )


app = create_app()
