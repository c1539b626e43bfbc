"""Assertions and request builders shared by the API tests."""

import http.client
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from wallet.errors import PROBLEM_BASE


def assert_problem(response: httpx.Response, status: int, problem: str) -> dict[str, Any]:
    """Check that `response` is a problem document of this status and type; return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document["type"] == PROBLEM_BASE + problem, document
    assert document["status"] == status
    assert document["title"] and document["detail"]
    return document


def idempotency_key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def transfer_body(source: str, destination: str, amount: str, **extra: Any) -> dict[str, Any]:
    return {
        "source_wallet_id": source,
        "destination_wallet_id": destination,
        "asset": "USD",
        "amount": amount,
        **extra,
    }


def post_transfer(
    client: httpx.Client, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else idempotency_key()
    return client.post("/v1/transfers", json=body, headers=headers)


def assert_idle_connection_outlives(client_idle_seconds: float, base_url: str) -> None:
    """A connection left idle after a request is still open when a client that keeps idle
    connections for `client_idle_seconds` would use it again: the server never closes one
    under a request in flight."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=5)
    try:
        connection.request("GET", "/no-such-page")
        connection.getresponse().read()
        time.sleep(client_idle_seconds + 1)
        assert connection.sock is not None
        connection.sock.setblocking(False)
        try:
            closed = connection.sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            closed = False
        assert not closed
    finally:
        connection.close()
