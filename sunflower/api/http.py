"""ASGI pieces around the GraphQL endpoint: body limit, bearer-token authentication (HTTP and WebSocket), JSON errors."""

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sunflower.auth.principals import Principal
from sunflower.common.errors import DomainError, Unauthenticated
from sunflower.container import services


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers=headers)


class GraphQLRequestGuard:
    """Refuse bodies over `max_bytes`, and JSON that does not parse, before GraphQL sees them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> JSONResponse:
        return error_response(
            413, "PAYLOAD_TOO_LARGE", f"request body is over the limit of {self.max_bytes} bytes"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        content_type = Headers(scope=scope).get("content-type", "")
        if body and content_type.startswith("application/json"):
            try:
                json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                await error_response(400, "BAD_REQUEST", f"request body is not valid JSON: {exc}")(scope, receive, send)
                return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class BearerAuth:
    """Turn `Authorization: Bearer <jwt>` into a principal; a bad token is refused, never ignored."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = None
        if scope["type"] == "http":
            header = Headers(scope=scope).get("authorization")
            if header:
                scheme, _, token = header.partition(" ")
                try:
                    if scheme.lower() != "bearer" or not token.strip():
                        raise Unauthenticated('Authorization header must be "Bearer <token>"')
                    principal = await run_in_threadpool(services().tokens.verify, token.strip())
                except DomainError as exc:
                    response = error_response(
                        401, exc.code, exc.message, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
                    )
                    await response(scope, receive, send)
                    return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def connection_principal(params: dict[str, Any]) -> Principal | None:
    """The caller named by a WebSocket `connection_init` payload (browsers cannot set headers there).

    `{"Authorization": "Bearer <jwt>"}` (or `authorization`, or `token` with the bare jwt); none is
    anonymous; a bad one raises, and the connection is refused rather than left anonymous.
    """
    header = params.get("Authorization", params.get("authorization"))
    bare = params.get("token")
    if header is None and bare is None:
        return None
    if header is not None:
        scheme, _, token = header.strip().partition(" ") if isinstance(header, str) else ("", "", "")
        if scheme.lower() != "bearer":
            raise Unauthenticated('Authorization in connection_init must be "Bearer <token>"')
    else:
        token = bare if isinstance(bare, str) else ""
        token = token.removeprefix("Bearer ").removeprefix("bearer ")
    if not token.strip():
        raise Unauthenticated("the token in connection_init is empty or not a string")
    return await run_in_threadpool(services().tokens.verify, token.strip())
