"""A limit on request bodies: a larger one is answered 413 and never read to its end."""

from starlette import types as asgi
from starlette.datastructures import Headers

from wallet.api.problems import problem_response
from wallet.errors import WalletError


class BodyTooLarge(WalletError):
    status_code = 413
    problem = "body-too-large"
    title = "The request body is larger than this API accepts"


class _LimitReached(Exception):
    """Raised into the app by `receive` once the body passed the limit."""


class BodyLimit:
    """ASGI middleware: bodies of at most `max_bytes`.

    A `Content-Length` above the limit is answered before the app runs. A body streamed
    without one (chunked) is counted as it is read: past the limit the app's next read fails,
    whatever the app answers is dropped, and the client gets the 413.
    """

    def __init__(self, app: asgi.ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> asgi.Message:
            nonlocal received, exceeded
            if exceeded:
                raise _LimitReached
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _LimitReached
            return message

        async def guarded_send(message: asgi.Message) -> None:
            nonlocal started
            if exceeded and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _LimitReached:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        error = BodyTooLarge(f"send at most {self.max_bytes} bytes")
        # The connection is closed after the answer: the rest of the body is never read.
        response = problem_response(error.to_problem(), {"Connection": "close"})
        await response(scope, receive, send)
