"""Device endpoints under /devices/: every request is signed with the device's secret."""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sunflower.common.errors import DomainError, Unauthenticated, ValidationFailed
from sunflower.container import services
from sunflower.devices.models import Device

DeviceHandler = Callable[[Request, Device, bytes], Awaitable[Response]]
_STATUS = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "VALIDATION_FAILED": 400}


def _error(exc: DomainError) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": exc.code, "message": exc.message}}
    return JSONResponse(body, _STATUS.get(exc.code, 409))


def signed(handler: DeviceHandler, *, max_body_bytes: int = 1_000_000) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an endpoint so it runs only for a device whose signature, clock and nonce check out."""

    async def endpoint(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return JSONResponse(
                {"error": {"code": "PAYLOAD_TOO_LARGE", "message": f"body over {max_body_bytes} bytes"}}, 413
            )
        body = await request.body()
        if len(body) > max_body_bytes:
            return JSONResponse(
                {"error": {"code": "PAYLOAD_TOO_LARGE", "message": f"body over {max_body_bytes} bytes"}}, 413
            )
        try:
            device = await run_in_threadpool(
                services().devices.authenticate, request.method, request.url.path, dict(request.headers), body
            )
            return await handler(request, device, body)
        except Unauthenticated as exc:
            return _error(exc)
        except DomainError as exc:
            return _error(exc)

    return endpoint


def json_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationFailed.on("body", f"is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValidationFailed.on("body", "must be a JSON object")
    return value


async def heartbeat(request: Request, device: Device, body: bytes) -> Response:
    """A device says it is alive (and which firmware it runs); the server answers with its time."""
    payload = json_body(body)
    firmware = payload.get("firmware")
    if firmware is not None and not isinstance(firmware, str):
        raise ValidationFailed.on("firmware", "must be a string")
    seen = await run_in_threadpool(services().devices.heartbeat, device, firmware)
    return JSONResponse({"deviceId": device.id, "serverTime": seen.isoformat()})
