"""Gate endpoints: POST /devices/gates/{gateId}/check (a camera frame) and .../check/{card|pin|pass}.

Every request gets a decision {decision, personId?, score, reason, method, latencyMs, eventId}
and leaves an AccessEvent, even when it is unsigned, replayed or unreadable: the community sees
every attempt. A refused signature answers 401, a gate that is not this device 403, anything
else 200 with the decision in the body. Served by the gate function in the cloud (it has the
models) and by the one local ASGI app on a laptop.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sunflower.container import services
from sunflower.devices.service import DeviceRejected
from sunflower.gate.models import CheckResult, GateReason, Method

_METHODS = {"card": (Method.CARD, "card"), "pin": (Method.PIN, "pin"), "pass": (Method.VISITOR_PASS, "code")}
_MAX_FORM_BYTES = 4096
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # the pipeline's own limit (sunflower.gate.face.decode), without importing numpy
_DEVICE_REASONS = {"UNKNOWN_DEVICE": GateReason.UNKNOWN_GATE, "REPLAYED": GateReason.REPLAYED,
                   "BAD_SIGNATURE": GateReason.BAD_SIGNATURE, "CLOCK_SKEW": GateReason.BAD_SIGNATURE,
                   "DISABLED": GateReason.BAD_SIGNATURE, "UNSIGNED": GateReason.UNSIGNED}


def _answer(result: CheckResult, status: int = 200, message: str | None = None) -> JSONResponse:
    body = result.to_json()
    if message:
        body["message"] = message
    return JSONResponse(body, status)


async def _read(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return body


async def check(request: Request) -> Response:
    gate_id = request.path_params["gateId"]
    kind = request.path_params.get("method")
    if kind is not None and kind not in _METHODS:
        return JSONResponse({"error": {"code": "NOT_FOUND", "message": f"no check method {kind!r}; use card, pin or pass"}}, 404)
    method, field = _METHODS[kind] if kind else (Method.FACE, None)
    gate = services().gate
    body = await _read(request, MAX_IMAGE_BYTES if method is Method.FACE else _MAX_FORM_BYTES)
    if body is None:
        result = await run_in_threadpool(gate.refused, gate_id, method, "IMAGE_TOO_LARGE" if method is Method.FACE else GateReason.BAD_REQUEST)
        return _answer(result, 413, "request body is too large")
    try:
        device = await run_in_threadpool(
            services().devices.authenticate, request.method, request.url.path, dict(request.headers), body
        )
    except DeviceRejected as exc:
        result = await run_in_threadpool(gate.refused, gate_id, method, _DEVICE_REASONS[exc.reason])
        return _answer(result, 401, exc.message)
    if device.id != gate_id:
        result = await run_in_threadpool(gate.refused, gate_id, method, GateReason.BAD_REQUEST)
        return _answer(result, 403, f"this request is signed by device {device.id}, not gate {gate_id}")
    if method is Method.FACE:
        return _answer(await run_in_threadpool(gate.check_face, device, body))
    value = _field(body, field)
    if value is None:
        result = await run_in_threadpool(gate.refused, gate_id, method, GateReason.BAD_REQUEST)
        return _answer(result, 400, f'send a JSON object {{"{field}": "..."}}')
    checker = {Method.CARD: gate.check_card, Method.PIN: gate.check_pin, Method.VISITOR_PASS: gate.check_pass}[method]
    return _answer(await run_in_threadpool(checker, device, value))


def _field(body: bytes, name: str) -> str | None:
    try:
        value: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    found = value.get(name) if isinstance(value, dict) else None
    return found if isinstance(found, str) and 0 < len(found) <= 64 else None


def routes() -> list[Route]:
    return [
        Route("/devices/gates/{gateId}/check", check, methods=["POST"]),
        Route("/devices/gates/{gateId}/check/{method}", check, methods=["POST"]),
    ]
