"""The one error body every non-2xx answer has, and the request limits that produce some of them.

``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``: ``loc`` says where
(``["body", "price"]``, ``["path", "product_id"]``, ``[]`` for the request as a whole),
``msg`` why, ``type`` a stable machine-readable code. The client's input is never echoed.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 4096  # a product is well under 1 KB; this leaves room for escapes
MAX_ERRORS = 20  # errors listed in one 422; more are summarised in one last entry


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error answer: a list of what went wrong, where."""

    detail: list[ErrorItem]


def error_body(loc: list[str | int], msg: str, type_: str) -> dict[str, Any]:
    return {"detail": [{"loc": loc, "msg": msg, "type": type_}]}


def capped(errors: list[dict[str, Any]]) -> dict[str, Any]:
    if len(errors) <= MAX_ERRORS:
        return {"detail": errors}
    shown = errors[: MAX_ERRORS - 1]
    more = len(errors) - len(shown)
    shown.append({"loc": [], "msg": f"{more} more errors not shown", "type": "too_many_errors"})
    return {"detail": shown}


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodySizeLimit:
    """Refuses a body over ``MAX_BODY_BYTES`` with 413 before anything parses it.

    A declared ``Content-Length`` over the cap is refused without reading; a chunked body
    is read only up to the cap. The unread rest makes the connection unusable, so the
    answer says ``Connection: close``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, send: Send) -> None:
        await _send_json(
            send,
            413,
            error_body([], f"request body larger than {self.max_bytes} bytes", "body_too_large"),
            [(b"connection", b"close")],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        early: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                early = message  # the client went away: the app sees the disconnect next
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return early if early is not None else await receive()

        await self.app(scope, replay, send)
