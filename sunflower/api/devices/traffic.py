"""Traffic device endpoints: sensors post batches, signal controllers fetch the plan in force.

POST /devices/traffic/batches                  a SENSOR of the corridor (its site) posts one sensor batch;
                                               the shape is checked and it is queued for the traffic
                                               function (which has scipy): 202 {batchId}
GET  /devices/controllers/{controllerId}/plan  a SIGNAL_CONTROLLER fetches its corridor's plan in force
                                               (export.plan_dict) with an ETag; 304 on If-None-Match

Both are signed like every device request (method, path and body; a GET signs an empty body).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sunflower.api.devices.http import signed
from sunflower.common.errors import PermissionDenied, ValidationFailed
from sunflower.container import services
from sunflower.devices.models import Device, DeviceKind
from sunflower.traffic.export import plan_dict

MAX_BATCH_BYTES = 250_000  # an SQS message holds 256 KiB, attributes included


async def post_batch(request: Request, device: Device, body: bytes) -> Response:
    if device.kind is not DeviceKind.SENSOR:
        raise PermissionDenied(f"device {device.id} is a {device.kind.value}, not a traffic sensor")
    try:
        batch = await run_in_threadpool(services().traffic.enqueue, device.site_id, body)
    except ValidationFailed as exc:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message, "fields": [
            {"field": p.field, "message": p.message} for p in exc.problems
        ]}}, 400)
    return JSONResponse({"batchId": batch.batch_id}, 202)


async def get_plan(request: Request, device: Device, body: bytes) -> Response:
    controller_id = request.path_params["controllerId"]
    if device.kind is not DeviceKind.SIGNAL_CONTROLLER:
        raise PermissionDenied(f"device {device.id} is a {device.kind.value}, not a signal controller")
    if device.id != controller_id:
        raise PermissionDenied(f"this request is signed by device {device.id}, not controller {controller_id}")
    plan, etag = await run_in_threadpool(services().traffic.current_plan, device.site_id)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(plan_dict(plan), headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison: the controller already runs this version."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or etag.removeprefix("W/") in {t.removeprefix("W/") for t in tags}


def routes() -> list[Route]:
    return [
        Route("/devices/traffic/batches", signed(post_batch, max_body_bytes=MAX_BATCH_BYTES), methods=["POST"]),
        Route("/devices/controllers/{controllerId}/plan", signed(get_plan), methods=["GET"]),
    ]
