"""The HTTP client of webhook attempts: checked destinations, a deadline, generic errors.

The client's connections resolve the host name themselves, refuse it if any address it
resolves to is not public (unless private targets are allowed), and connect to the address
they checked; the URL's name stays the `Host` header, the TLS server name and the name the
certificate is checked against. Every network step of an attempt (resolving, connecting,
the TLS handshake, each read and write) waits at most until the attempt's deadline, so a
receiver that answers one byte at a time cannot hold an attempt beyond it.

What a tenant reads about a failed attempt is a class of failure (`describe_failure`), never
the exception's text, which would tell open ports from closed ones on the other side.
"""

import contextlib
import ipaddress
import logging
import socket
import ssl
import time
import typing
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as ResolutionTimeout
from contextvars import ContextVar
from typing import Final

import httpcore
import httpx

from wallet.webhooks.destinations import IPAddress, is_public

log = logging.getLogger(__name__)

TIMEOUT: Final = "timeout"
CONNECTION_FAILED: Final = "connection failed"
TLS_FAILED: Final = "TLS handshake failed"
BLOCKED: Final = "blocked destination"
FAILED: Final = "delivery failed"

_deadline: ContextVar[float | None] = ContextVar("webhook_attempt_deadline", default=None)


class DestinationBlocked(Exception):
    """The host resolved to an address webhooks may not be sent to."""


@contextlib.contextmanager
def attempt_deadline(seconds: float) -> Iterator[None]:
    """Bound every network step of the requests made inside to `seconds` from now, in all."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def webhook_client(*, allow_private: bool, timeout: float) -> httpx.Client:
    """The client attempts post with: no redirects, no proxies from the environment."""
    return httpx.Client(
        transport=_CheckedTransport(allow_private=allow_private),
        follow_redirects=False,
        trust_env=False,
        timeout=timeout,
    )


def describe_failure(error: Exception) -> str:
    """The class of failure a tenant may read; the full error goes to the log only."""
    if isinstance(error, DestinationBlocked):
        return BLOCKED
    if isinstance(error, httpx.TimeoutException):
        return TIMEOUT
    if isinstance(error, httpx.TransportError):
        return TLS_FAILED if _caused_by(error, ssl.SSLError) else CONNECTION_FAILED
    return FAILED


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _remaining(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """The time a network step may take: its own timeout, cut to the attempt's deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the attempt's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _CheckedTransport(httpx.HTTPTransport):
    def __init__(self, *, allow_private: bool) -> None:
        super().__init__()
        # httpx's transport takes no network backend; its pool is made again around ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_CheckedNetwork(allow_private=allow_private),
        )


class _CheckedNetwork(httpcore.NetworkBackend):
    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._network = httpcore.SyncBackend()
        # getaddrinfo takes no timeout: it runs here and the attempt waits only so long. Enough
        # threads that one tenant's slow name servers leave lookups free for the others.
        self._resolver = ThreadPoolExecutor(max_workers=32, thread_name_prefix="webhook-dns")

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._resolve(host, port, timeout)
        if not self._allow_private:
            blocked = [address for address in addresses if not is_public(address)]
            if blocked:
                raise DestinationBlocked(f"{host} resolves to {blocked[0]}, not a public address")
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                stream = self._network.connect_tcp(
                    str(address),
                    port,
                    _remaining(timeout, httpcore.ConnectTimeout),
                    local_address,
                    socket_options,
                )
            except httpcore.ConnectError as error:
                failure = error
                continue
            return _DeadlineStream(stream)
        raise failure or httpcore.ConnectError(f"{host} has no address")

    def _resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        lookup = self._resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        try:
            found = lookup.result(_remaining(timeout, httpcore.ConnectTimeout))
        except ResolutionTimeout:
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from None
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        # Scoped IPv6 addresses come back as "fe80::1%eth0": the scope is not part of it.
        return list(
            dict.fromkeys(ipaddress.ip_address(str(entry[4][0]).split("%")[0]) for entry in found)
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise DestinationBlocked("webhooks are not sent to Unix sockets")


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        remaining = _remaining(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, remaining))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)
