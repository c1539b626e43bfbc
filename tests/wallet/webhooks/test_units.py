"""Pure parts of events out: the type registry, backoff, sealed secrets, signed headers, the
queues tasks go to."""

import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook, WebhookVerificationError

from wallet.celery_app import create_app
from wallet.events.service import EVENT_TYPES, is_subscription, matches
from wallet.settings import Settings
from wallet.webhooks.attempt import RetryPolicy
from wallet.webhooks.envelope import event_body, signed_headers
from wallet.webhooks.secrets import (
    SecretBox,
    SecretUnreadable,
    display_secret,
    new_key,
    new_signing_secret,
    parse_key,
)
from wallet.webhooks.tasks import DELIVER_WEBHOOK, RELAY_OUTBOX, SWEEP_WEBHOOK_DELIVERIES


def test_the_registry_holds_the_event_types_of_every_area() -> None:
    for name in ("transfer.created", "deposit.seen", "deposit.credited", "deposit.orphaned"):
        assert name in EVENT_TYPES
    families = {name.split(".")[0] for name in EVENT_TYPES}
    assert families == {"transfer", "deposit", "chain", "withdrawal", "custody", "payin", "payout"}


def test_subscriptions_name_types_families_or_everything() -> None:
    assert is_subscription("transfer.created")
    assert is_subscription("deposit.*")
    assert is_subscription("*")
    assert not is_subscription("transfer.deleted")
    assert not is_subscription("loan.*")
    assert not is_subscription("deposit.")
    assert matches(["deposit.*"], "deposit.seen")
    assert matches(["*"], "payout.paid")
    assert matches(["payin.failed", "transfer.created"], "transfer.created")
    assert not matches(["deposit.*"], "transfer.created")
    assert not matches(["transfer.created"], "deposit.seen")


def test_backoff_grows_to_its_cap_with_jitter_below_the_nominal_delay() -> None:
    policy = RetryPolicy(base=5, factor=6, maximum=3600)
    nominal = [5, 30, 180, 1080, 3600, 3600]
    for attempt, expected in enumerate(nominal, start=1):
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0.75 * expected <= delay <= expected for delay in delays)
        assert len(set(delays)) > 1
    assert policy.delay(10_000) <= 3600


def test_a_sealed_secret_opens_only_with_its_key_and_for_its_endpoint() -> None:
    box = SecretBox(parse_key(new_key()))
    raw, shown = new_signing_secret()
    assert shown == display_secret(raw) and shown.startswith("whsec_")
    sealed = box.seal(raw, "whe_one")
    assert raw not in sealed
    assert box.open(sealed, "whe_one") == raw
    with pytest.raises(SecretUnreadable):
        box.open(sealed, "whe_two")
    with pytest.raises(SecretUnreadable):
        SecretBox(parse_key(new_key())).open(sealed, "whe_one")
    with pytest.raises(SecretUnreadable):
        box.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), "whe_one")


def test_a_key_must_be_32_bytes_of_base64() -> None:
    with pytest.raises(ValueError, match="base64"):
        parse_key("not base64!")
    with pytest.raises(ValueError, match="32 bytes"):
        parse_key("c2hvcnQ=")


def test_signed_headers_verify_with_the_standard_webhooks_library() -> None:
    raw, shown = new_signing_secret()
    created = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    body = event_body("evt_x", "transfer.created", created, {"amount": "1.50"})
    headers = signed_headers(raw, "evt_x", body, datetime.now(UTC))
    assert headers["webhook-id"] == "evt_x"
    payload = Webhook(shown).verify(body, headers)
    assert payload == {
        "id": "evt_x",
        "type": "transfer.created",
        "timestamp": "2025-01-02T03:04:05Z",
        "data": {"amount": "1.50"},
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(new_signing_secret()[1]).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(shown).verify(body.replace("1.50", "9.50"), headers)


def test_without_a_configured_key_one_is_made_once_in_the_data_directory(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", webhook_secrets_key=None)
    boxes: list[SecretBox] = []
    makers = [
        threading.Thread(target=lambda: boxes.append(SecretBox.from_settings(settings)))
        for _ in range(8)
    ]
    for maker in makers:
        maker.start()
    for maker in makers:
        maker.join()
    sealed = boxes[0].seal(b"secret", "whe_x")
    assert all(box.open(sealed, "whe_x") == b"secret" for box in boxes)
    key_file = tmp_path / "data" / "webhook-secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [path.name for path in key_file.parent.iterdir()] == [key_file.name]
    configured = Settings(data_dir=tmp_path / "other", webhook_secrets_key=new_key())
    with pytest.raises(SecretUnreadable):
        SecretBox.from_settings(configured).open(sealed, "whe_x")
    assert not (tmp_path / "other").exists()


def test_attempts_go_to_a_queue_of_their_own() -> None:
    settings = Settings(
        database_url=SecretStr("postgresql://wallet@127.0.0.1/wallet"),
        broker_url=SecretStr("redis://127.0.0.1:6379/0"),
        celery_queue="events",
    )
    app = create_app(settings)
    queues = {
        name: app.amqp.router.route({}, name, (), {})["queue"].name
        for name in (RELAY_OUTBOX, SWEEP_WEBHOOK_DELIVERIES, DELIVER_WEBHOOK)
    }
    assert queues == {
        RELAY_OUTBOX: "events",
        SWEEP_WEBHOOK_DELIVERIES: "events",
        DELIVER_WEBHOOK: "events.webhooks",
    }
