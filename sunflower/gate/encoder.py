"""Enrollment photos -> templates: in this process, or by invoking the gate function.

The API function carries no numpy or onnxruntime (its package stays small and its cold start
fast), so in the cloud it asks the gate function, which has the models layer, to run the face
pipeline: `SUNFLOWER_FACE_ENCODER_FUNCTION` names it. Left empty (laptop, tests, CLI, the gate
function itself) the pipeline runs here. Photos travel only inside that invocation and are never
written anywhere; what comes back is one template (or one refusal) per photo.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from functools import cache
from typing import TYPE_CHECKING, Protocol

from sunflower.aws.clients import client

if TYPE_CHECKING:
    from sunflower.gate.face import FacePipeline

ACTION = "encode"
MAX_PHOTOS = 5
# Lambda takes at most 6 MB per synchronous request; base64 adds a third.
MAX_TOTAL_PHOTO_BYTES = 4_000_000


@dataclass(frozen=True)
class Encoded:
    """One photo's outcome: a unit-length little-endian float32 template, or why there is none."""

    template: bytes | None = None
    reason: str | None = None  # sunflower.gate.face.Reason
    message: str | None = None
    liveness: float | None = None


class FaceEncoder(Protocol):
    def encode(self, photos: list[bytes]) -> list[Encoded]: ...


@cache
def face_pipeline() -> FacePipeline:
    """One pipeline per process: the onnxruntime sessions open once."""
    from sunflower.gate.face import FacePipeline

    return FacePipeline.from_manifest()


class LocalEncoder:
    def encode(self, photos: list[bytes]) -> list[Encoded]:
        from sunflower.gate.face import FaceError

        pipeline, out = face_pipeline(), []
        for photo in photos:
            try:
                analysis = pipeline.analyse(photo)
            except FaceError as exc:
                out.append(Encoded(reason=str(exc.code), message=exc.message))
                continue
            live = analysis.liveness.score if analysis.liveness else None
            out.append(Encoded(template=analysis.embedding.astype("<f4").tobytes(), liveness=live))
        return out


class LambdaEncoder:
    def __init__(self, function_name: str) -> None:
        self.function_name = function_name

    def encode(self, photos: list[bytes]) -> list[Encoded]:
        payload = {"action": ACTION, "photos": [base64.b64encode(p).decode() for p in photos]}
        response = client("lambda").invoke(FunctionName=self.function_name, Payload=json.dumps(payload).encode())
        body = response["Payload"].read()
        if response.get("FunctionError"):
            raise RuntimeError(f"{self.function_name} failed to encode the photos: {body[:500]!r}")
        return results_from_wire(json.loads(body))


def encoder_for(function_name: str) -> FaceEncoder:
    return LambdaEncoder(function_name) if function_name else LocalEncoder()


# -- the invocation's wire format ----------------------------------------------------------------


def handle_encode_request(event: dict) -> dict:
    """The gate function's answer to {"action": "encode", "photos": [base64, ...]}."""
    photos = event.get("photos")
    if not isinstance(photos, list) or not 1 <= len(photos) <= MAX_PHOTOS:
        raise ValueError(f"photos must be a list of 1 to {MAX_PHOTOS} base64 images")
    decoded = [base64.b64decode(p, validate=True) for p in photos]
    return {"results": [_to_wire(r) for r in LocalEncoder().encode(decoded)]}


def _to_wire(result: Encoded) -> dict:
    wire = asdict(result)
    wire["template"] = base64.b64encode(result.template).decode() if result.template else None
    return wire


def results_from_wire(body: dict) -> list[Encoded]:
    return [Encoded(template=base64.b64decode(r["template"]) if r.get("template") else None, reason=r.get("reason"),
                    message=r.get("message"), liveness=r.get("liveness")) for r in body["results"]]
