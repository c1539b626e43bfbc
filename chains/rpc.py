"""A small JSON-RPC 2.0 client over HTTP with batching and typed errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

# HTTP statuses a proxy or provider in front of a node answers while it is overloaded or down.
_TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429, 502, 503, 504})


class RpcError(Exception):
    """Base class of every error raised by `RpcClient`."""


class NodeUnreachable(RpcError):
    """The node could not be reached or did not answer in time; wait and retry the same call."""


class RpcProtocolError(RpcError):
    """The node answered something that is not a valid JSON-RPC response."""


class RpcResponseError(RpcError):
    """The node answered a request with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str, data: object = None) -> None:
        super().__init__(f"{method}: JSON-RPC error {code}: {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


@dataclass(frozen=True, slots=True)
class RpcCall:
    """One JSON-RPC request: a method name and its positional parameters."""

    method: str
    params: Sequence[object] = ()


class RpcClient:
    """Synchronous JSON-RPC client on one keep-alive HTTP connection pool.

    `batch` sends many calls in one POST (split into chunks of `max_batch_size`) and returns the
    results in call order; any error in the batch raises, never an empty or partial result.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 3.0,
        max_batch_size: int = 1000,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.url = url
        self.max_batch_size = max_batch_size
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            headers={"content-type": "application/json"},
        )

    def close(self) -> None:
        """Close the underlying connections."""
        self._http.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def call(self, method: str, *params: object) -> Any:
        """Send one request and return its `result` (which may legitimately be None)."""
        payload = {"jsonrpc": "2.0", "id": 0, "method": method, "params": list(params)}
        reply = self._post(payload)
        if not isinstance(reply, dict):
            raise RpcProtocolError(f"{method}: expected a JSON object, got {type(reply).__name__}")
        return _result_of(method, reply)

    def batch(self, calls: Sequence[RpcCall]) -> list[Any]:
        """Send `calls` as JSON-RPC batches and return their results in the same order."""
        return [
            _result_of(c.method, reply)
            for c, reply in zip(calls, self._replies(calls), strict=True)
        ]

    def batch_settled(self, calls: Sequence[RpcCall]) -> list[Any]:
        """Like `batch`, but a call the node answers with an error object gets that error
        (an `RpcResponseError`) in its place instead of raising; other errors still raise."""
        settled: list[Any] = []
        for call, reply in zip(calls, self._replies(calls), strict=True):
            try:
                settled.append(_result_of(call.method, reply))
            except RpcResponseError as error:
                settled.append(error)
        return settled

    def _replies(self, calls: Sequence[RpcCall]) -> list[dict[str, Any]]:
        replies: list[dict[str, Any]] = []
        for start in range(0, len(calls), self.max_batch_size):
            replies.extend(self._batch_chunk(calls[start : start + self.max_batch_size]))
        return replies

    def _batch_chunk(self, calls: Sequence[RpcCall]) -> list[dict[str, Any]]:
        if not calls:
            return []
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": c.method, "params": list(c.params)}
            for i, c in enumerate(calls)
        ]
        replies = self._post(payload)
        if not isinstance(replies, list):
            # Nodes answer a whole batch with one error object when they reject the batch itself.
            if isinstance(replies, dict) and isinstance(replies.get("error"), dict):
                _result_of(f"batch of {len(calls)}", replies)
            raise RpcProtocolError(f"batch: expected a JSON array, got {type(replies).__name__}")
        by_id: dict[int, dict[str, Any]] = {}
        for reply in replies:
            if not isinstance(reply, dict) or not isinstance(reply.get("id"), int):
                raise RpcProtocolError(f"batch: reply without an integer id: {reply!r:.200}")
            by_id[reply["id"]] = reply
        if len(by_id) != len(calls):
            raise RpcProtocolError(f"batch: sent {len(calls)} requests, got {len(by_id)} replies")
        ordered: list[dict[str, Any]] = []
        for i, c in enumerate(calls):
            reply = by_id.get(i)
            if reply is None:
                raise RpcProtocolError(f"batch: no reply for request {i} ({c.method})")
            ordered.append(reply)
        return ordered

    def _post(self, payload: object) -> Any:
        body = json.dumps(payload, separators=(",", ":"))
        try:
            response = self._http.post(self.url, content=body)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as e:
            raise NodeUnreachable(f"{self.url}: {type(e).__name__}: {e}") from e
        if response.status_code in _TRANSIENT_HTTP_STATUSES:
            raise NodeUnreachable(f"{self.url}: HTTP {response.status_code}")
        try:
            body_json = json.loads(response.content)
        except ValueError as e:
            raise RpcProtocolError(
                f"{self.url}: HTTP {response.status_code}, body is not JSON: {response.text:.200}"
            ) from e
        if response.status_code != 200 and not (
            # Some nodes send JSON-RPC errors with HTTP 4xx/5xx; the error object says more.
            isinstance(body_json, dict) and isinstance(body_json.get("error"), dict)
        ):
            raise RpcProtocolError(f"{self.url}: HTTP {response.status_code}: {response.text:.200}")
        return body_json


def _result_of(method: str, reply: dict[str, Any]) -> Any:
    error = reply.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise RpcProtocolError(f"{method}: malformed error object {error!r:.200}")
        raise RpcResponseError(
            method, int(error.get("code", 0)), str(error.get("message", "")), error.get("data")
        )
    if "result" not in reply:
        raise RpcProtocolError(f"{method}: reply has neither result nor error")
    return reply["result"]
