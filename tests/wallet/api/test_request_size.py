"""Request bodies are limited, and a caller without a valid key is refused before its body is read.

Raw HTTP over a socket to the API under uvicorn, so that a test decides how much of a body is
sent: an answer that comes while most of the declared body is still unsent proves that the
server did not wait for it. These are the suite's smoke tests of the app as uvicorn serves it;
the other API tests reach it in process.
"""

import json
import select
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tests.api_fixtures import ApiTenant
from wallet.errors import PROBLEM_BASE

FIFTY_MB = 50 * 1024 * 1024
CHUNK = 64 * 1024
ANSWER_WITHIN = 10.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/problem+json", self
        document: dict[str, Any] = json.loads(self.body)
        return document


def _head(url: str, target: str, headers: dict[str, str]) -> bytes:
    host = urlsplit(url).netloc
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _exchange(url: str, head: bytes, body: Iterable[bytes]) -> tuple[Answer, int]:
    """Send `head`, then `body` piece by piece until the server answers; the answer and how
    many body bytes went out before it came."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=ANSWER_WITHIN) as sock:
        sock.sendall(head)
        sent = 0
        for piece in body:
            if select.select([sock], [], [], 0.05)[0]:
                break
            sock.sendall(piece)
            sent += len(piece)
        return _read_answer(sock), sent


def _read_answer(sock: socket.socket) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        received = sock.recv(65536)
        assert received, f"the server closed the connection without an answer: {data!r}"
        data += received
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers["content-length"]):
        received = sock.recv(65536)
        assert received
        body += received
    return Answer(int(status_line.split()[1]), headers, body)


def _padding(size: int) -> Iterable[bytes]:
    """A JSON body of `size` bytes, in pieces."""
    yield b'{"owner_ref": "'
    for _ in range(size // CHUNK):
        yield b"x" * CHUNK


def _chunked(pieces: Iterable[bytes]) -> Iterable[bytes]:
    for piece in pieces:
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def _bearer(tenant: ApiTenant) -> str:
    authorization = tenant.client.headers["authorization"]
    assert isinstance(authorization, str)
    return authorization


def test_without_a_key_a_large_body_is_refused_before_it_is_read(served_tenant: ApiTenant) -> None:
    head = _head(served_tenant.url, "/v1/wallets", {"Content-Length": str(FIFTY_MB)})
    answer, sent = _exchange(served_tenant.url, head, _padding(FIFTY_MB))
    assert answer.status == 401
    assert answer.problem()["type"] == PROBLEM_BASE + "unauthenticated"
    assert answer.headers["www-authenticate"] == "Bearer"
    assert sent < FIFTY_MB // 10


def test_with_a_wrong_key_a_chunked_body_is_refused_before_it_is_read(
    served_tenant: ApiTenant,
) -> None:
    headers = {"Transfer-Encoding": "chunked", "Authorization": "Bearer wk_live_" + "a" * 43}
    head = _head(served_tenant.url, "/v1/transfers", headers)
    answer, sent = _exchange(served_tenant.url, head, _chunked(_padding(FIFTY_MB)))
    assert answer.status == 401
    assert answer.problem()["type"] == PROBLEM_BASE + "unauthenticated"
    assert sent < FIFTY_MB // 10


def test_a_declared_length_above_the_limit_is_refused_before_the_body_is_sent(
    served_tenant: ApiTenant,
) -> None:
    headers = {"Content-Length": str(FIFTY_MB), "Authorization": _bearer(served_tenant)}
    answer, sent = _exchange(
        served_tenant.url, _head(served_tenant.url, "/v1/wallets", headers), ()
    )
    assert answer.status == 413
    assert answer.problem()["type"] == PROBLEM_BASE + "body-too-large"
    assert sent == 0


def test_a_chunked_body_is_counted_and_refused_past_the_limit(served_tenant: ApiTenant) -> None:
    headers = {"Transfer-Encoding": "chunked", "Authorization": _bearer(served_tenant)}
    head = _head(served_tenant.url, "/v1/wallets", headers)
    answer, sent = _exchange(served_tenant.url, head, _chunked(_padding(FIFTY_MB)))
    assert answer.status == 413
    problem = answer.problem()
    assert problem["type"] == PROBLEM_BASE + "body-too-large"
    assert problem["status"] == 413
    assert sent < FIFTY_MB // 10


def test_the_largest_request_the_schema_allows_fits_the_limit(tenant: ApiTenant) -> None:
    # Metadata at its limits, every character an emoji escaped as a surrogate pair.
    metadata = {f"{i:02d}" + "😀" * 38: "😀" * 500 for i in range(50)}
    body = json.dumps({"owner_ref": "😀" * 200, "metadata": metadata}).encode()
    assert len(body) > 300_000
    created = tenant.client.post(
        "/v1/wallets", content=body, headers={"Content-Type": "application/json"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["metadata"] == metadata
