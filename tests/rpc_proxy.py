"""A JSON-RPC proxy in front of a node that leaves logs out, as a lagging replica does."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class LogDroppingProxy:
    """A JSON-RPC proxy in front of a node that leaves every log (or only those of the contract
    `only`) out of its first `drops` answers to eth_getLogs."""

    def __init__(self, upstream: str, drops: int, only: str | None = None) -> None:
        self.drops = drops
        self.only = only
        self.get_logs_calls = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = proxy.forward(json.loads(body))
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._upstream = httpx.Client(base_url=upstream, timeout=30)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def forward(self, request: Any) -> Any:
        answer = self._upstream.post("", json=request).json()
        if isinstance(request, list):
            by_id = {reply["id"]: reply for reply in answer}
            for call in request:
                self._drop_logs(call, by_id[call["id"]])
        else:
            self._drop_logs(request, answer)
        return answer

    def _drop_logs(self, call: dict[str, Any], reply: dict[str, Any]) -> None:
        if call["method"] != "eth_getLogs":
            return
        self.get_logs_calls += 1
        if self.drops > 0:
            self.drops -= 1
            reply["result"] = [
                log
                for log in reply["result"]
                if self.only is not None and log["address"].lower() != self.only
            ]

    @contextmanager
    def running(self) -> Iterator["LogDroppingProxy"]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._upstream.close()
