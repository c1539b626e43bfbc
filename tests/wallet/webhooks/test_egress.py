"""Webhook egress: only public destinations, checked when registered and when connecting;
each attempt within a wall-clock deadline; tenants read classes of failure, never the error.

Receivers are real servers on 127.0.0.1: an attempt made with private targets refused must
never reach them, and one made with them allowed shows how the failure is reported.
"""

import ipaddress
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.api_fixtures import bearer_client, issue_key, running_api
from tests.api_helpers import assert_problem
from tests.factories import Factory
from tests.webhook_fixtures import (
    NOWHERE,
    WebhookReceiver,
    add_endpoint,
    deliveries_of,
    emit_committed,
    garbage,
    raw_receiver,
    reset,
    trickle,
)
from wallet.webhooks.attempt import AttemptOutcome, DeliveryOptions, RetryPolicy, deliver
from wallet.webhooks.destinations import check_host, is_public
from wallet.webhooks.dispatch import relay_outbox
from wallet.webhooks.egress import webhook_client
from wallet.webhooks.errors import WebhookDestinationNotAllowed
from wallet.webhooks.models import DeliveryStatus
from wallet.webhooks.secrets import SecretBox

# The destinations of the report: loopback, metadata, IPv6 loopback, a hex-encoded loopback,
# a private network, and the metadata service's name.
INTERNAL_URLS = [
    "http://127.0.0.1/hooks",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hooks",
    "http://0x7f000001/hooks",
    "http://10.0.0.5/hooks",
    "http://metadata.google.internal/computeMetadata/v1/",
]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "0.0.0.0",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "192.0.2.1",
        "198.18.0.1",
        "224.0.0.1",
        "233.252.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "ff02::1",
        "ff0e::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        "2001:db8::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "100.128.0.1", "2606:4700:4700::1111", "2002:808:808::1"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "169.254.169.254",
        "::1",
        "10.0.0.5",
        "100.64.1.1",
        "localhost",
        "LOCALHOST.",
        "api.localhost",
        "metadata.google.internal",
        "metadata",
        "printer.local",
    ],
)
def test_registration_refuses_hosts_that_are_not_public(host: str) -> None:
    with pytest.raises(WebhookDestinationNotAllowed):
        check_host(host, allow_private=False)
    check_host(host, allow_private=True)


@pytest.mark.parametrize(
    "host", ["0x7f000001", "2130706433", "0177.0.0.1", "127.1", "0x7f.1", "8.8.8.010", "1.2.3.999"]
)
def test_odd_encodings_of_addresses_are_refused_even_where_private_targets_are_allowed(
    host: str,
) -> None:
    for allow_private in (False, True):
        with pytest.raises(WebhookDestinationNotAllowed):
            check_host(host, allow_private=allow_private)


@pytest.mark.parametrize("host", ["app.example", "hooks.example.com.", "8.8.8.8", "2606:4700::1"])
def test_registration_accepts_public_hosts(host: str) -> None:
    check_host(host, allow_private=False)


@pytest.fixture(scope="module")
def locked_down_api(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API that refuses private targets, as production does by default."""
    extra_env = {"WALLET_WEBHOOK_ALLOW_PRIVATE_TARGETS": "false"}
    with running_api(database_url, tmp_path_factory.mktemp("locked"), extra_env) as url:
        yield url


def test_the_api_refuses_internal_destinations_with_a_problem(
    locked_down_api: str, factory: Factory, sessions: sessionmaker[Session]
) -> None:
    secret = issue_key(sessions, factory.tenant_id, "read", "operator")
    with bearer_client(locked_down_api, secret) as client:
        for url in INTERNAL_URLS:
            body = {"url": url, "event_types": ["*"]}
            refused = client.post("/v1/webhook-endpoints", json=body)
            assert_problem(refused, 422, "webhook-destination-not-allowed")
        public = {"url": "https://hooks.example.com/wallet", "event_types": ["*"]}
        assert client.post("/v1/webhook-endpoints", json=public).status_code == 201
        assert len(client.get("/v1/webhook-endpoints").json()["data"]) == 1


OneAttempt = Callable[..., AttemptOutcome]


@pytest.fixture
def attempt(factory: Factory, sessions: sessionmaker[Session], secret_box: SecretBox) -> OneAttempt:
    """Register `url` (registration allowing private targets), emit an event, attempt it
    once with a client that allows them or not; the outcome, and the deliveries' last error
    as the tenant reads it is checked to be the same."""

    def attempt_once(url: str, *, allow_private: bool, timeout: float = 5) -> AttemptOutcome:
        tenant = factory.tenant_id
        endpoint, _ = add_endpoint(sessions, secret_box, tenant, url, ["*"])
        emit_committed(sessions, tenant)
        relay_outbox(sessions, lambda delivery_id: None)
        (delivery,) = deliveries_of(sessions, tenant, endpoint.id)
        options = DeliveryOptions(retry=RetryPolicy(), timeout=timeout, lease=30)
        with webhook_client(allow_private=allow_private, timeout=timeout) as client:
            outcome = deliver(
                sessions, delivery.id, client=client, secrets=secret_box, options=options
            )
        assert outcome is not None
        (seen,) = deliveries_of(sessions, tenant, endpoint.id)
        assert seen.last_error == outcome.error
        return outcome

    return attempt_once


def test_the_connection_refuses_names_and_addresses_that_resolve_to_private_ones(
    attempt: OneAttempt, receiver: WebhookReceiver
) -> None:
    # Registered while private targets were allowed (or under a name that resolved to a
    # public address then): the check at connect time is what keeps the attempt out.
    port = receiver.url("x").split(":")[2].split("/")[0]
    for url in (
        receiver.url("literal"),
        f"http://localhost:{port}/name",
        f"http://[::ffff:127.0.0.1]:{port}/mapped",
    ):
        outcome = attempt(url, allow_private=False)
        assert (outcome.status_code, outcome.error) == (None, "blocked destination"), url
        assert outcome.status is DeliveryStatus.PENDING
    assert receiver.received() == []


def test_a_checked_connection_keeps_the_name_as_the_host_header(
    attempt: OneAttempt, receiver: WebhookReceiver
) -> None:
    port = receiver.url("x").split(":")[2].split("/")[0]
    outcome = attempt(f"http://localhost:{port}/named", allow_private=True)
    assert outcome.status is DeliveryStatus.DELIVERED
    (request,) = receiver.received("named")
    assert request.headers["host"] == f"localhost:{port}"


def test_tenants_read_classes_of_failure_never_the_error_text(attempt: OneAttempt) -> None:
    outcomes = {"closed port": attempt(NOWHERE, allow_private=True)}
    with raw_receiver(reset) as url:
        outcomes["reset"] = attempt(url, allow_private=True)
    with raw_receiver(garbage) as url:
        outcomes["not HTTP"] = attempt(url, allow_private=True)
    with raw_receiver(garbage) as url:
        outcomes["not TLS"] = attempt(url.replace("http://", "https://"), allow_private=True)
    with raw_receiver(trickle) as url:
        outcomes["trickle"] = attempt(url, allow_private=True, timeout=1)
    assert {name: outcome.error for name, outcome in outcomes.items()} == {
        "closed port": "connection failed",
        "reset": "connection failed",
        "not HTTP": "connection failed",
        "not TLS": "TLS handshake failed",
        "trickle": "timeout",
    }


def test_an_attempt_ends_at_its_deadline_however_the_receiver_trickles(
    attempt: OneAttempt,
) -> None:
    # Before, each byte restarted the read timeout: a 1-s attempt took 14.8 s.
    with raw_receiver(trickle) as url:
        started = time.monotonic()
        outcome = attempt(url, allow_private=True, timeout=1)
        took = time.monotonic() - started
    assert outcome.error == "timeout"
    assert took < 4, f"the attempt took {took:.1f} s"


def test_the_client_takes_no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with webhook_client(allow_private=False, timeout=1) as client:
        assert client._mounts == {}


@pytest.fixture
def tls_receiver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[int, list[str]]]:
    """An HTTPS server on 127.0.0.1 whose certificate names `localhost` only, trusted by the
    clients made here; yields its port and the server names (SNI) it was asked for."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    self_signed = "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
    subprocess.run(
        [
            "openssl",
            *self_signed.split(),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(certificate)),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    names: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    context.sni_callback = lambda _socket, name, _context: names.append(name or "")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            self.send_response(200 if self.headers["host"].startswith("localhost:") else 400)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], names
    server.shutdown()
    server.server_close()
    thread.join()


def test_tls_is_made_with_the_name_connected_to_the_address_it_resolved_to(
    attempt: OneAttempt, tls_receiver: tuple[int, list[str]]
) -> None:
    port, names = tls_receiver
    outcome = attempt(f"https://localhost:{port}/tls", allow_private=True)
    assert (outcome.status_code, outcome.error) == (200, None)
    assert names == ["localhost"]
    # The certificate names `localhost`, not the address: checked against the name it is.
    by_address = attempt(f"https://127.0.0.1:{port}/tls", allow_private=True)
    assert by_address.error == "TLS handshake failed"
