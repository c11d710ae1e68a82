"""The gate check end to end: signed HTTP request -> decision, against the embedded cloud.

Run: sunflower bench gate_endpoint [--residents N] [--checks N]
A community gallery of N residents (default 10,000: one real resident enrolled through the service
with two photos, the rest synthetic templates published as a gallery version) and a registered
gate. Each check POSTs a real camera frame, signed, to /devices/gates/{id}/check of the gate
function's ASGI app through the Mangum handler with a real-shaped API Gateway event: signature and
single-use nonce (DynamoDB), face pipeline, 1:N search, registry residency lookup, AccessEvent write
and EventBridge publish. Prints the server-side decision latency (`latencyMs`, decode to decision)
and the whole request's latency, and as the baseline the same handler answering a card check
(no face work) in the same process. The embedded cloud is moto over loopback HTTP: its round trips
(several ms each) stand in for DynamoDB's. Ends with one JSON line.
"""

import argparse
import base64
import json
import logging
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=10_000)
    parser.add_argument("--checks", type=int, default=200)
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    import numpy as np
    from factories import official, person_row, property_manager, register_device

    from sunflower.auth import device_signature
    from sunflower.common.clock import utc_now
    from sunflower.gate import modelstore
    from sunflower.gate.gallery_file import GalleryFile
    from sunflower.gate.models import ConsentMethod
    from sunflower.gate.service import ConsentInput
    from sunflower.local import cloud
    from sunflower.local.lambda_context import LambdaContext

    local = cloud.start()
    local.build()
    from functions import gate_check
    from sunflower.container import services

    community = "bench-community"
    photos = modelstore.photo_dir() / "face_recognition"
    svc = services()
    person = svc.registries.register_person(official(), person_row(current_community_id=community), "bench").person.id
    svc.gate.enroll(property_manager(community), community_id=community, person_id=person,
                    photos=[(photos / "obama.jpg").read_bytes(), (photos / "obama2.jpg").read_bytes()],
                    consent=ConsentInput(person, utc_now() - timedelta(minutes=1), ConsentMethod.IN_PERSON),
                    purpose="bench")
    rng = np.random.default_rng(7)
    synthetic = rng.standard_normal((args.residents - 1, 512)).astype(np.float32)
    synthetic /= np.linalg.norm(synthetic, axis=1, keepdims=True)
    rows = [r.astype("<f4").tobytes() for r in synthetic]

    def add_synthetic(gallery: GalleryFile) -> GalleryFile:
        ids = [*gallery.person_ids(), *[f"synthetic-{i}" for i in range(len(rows))]]
        return GalleryFile.from_rows(gallery.dim, ids, gallery.rows + b"".join(rows))

    version = svc.gate._galleries.update(community, add_synthetic)
    issued = register_device(svc.devices, site_id=community)
    gate_id, secret = issued.device.id, issued.secret
    template = json.loads((ROOT / "tests" / "events" / "apigw_http_v2_gate_check.json").read_text())
    context = LambdaContext.for_invocation("gateCheck", region="ap-east-1", timeout_s=10)

    def request(path: str, body: bytes) -> dict:
        event = json.loads(json.dumps(template).replace("GATE_ID", gate_id))
        event.update(rawPath=path, body=base64.b64encode(body).decode())
        event["requestContext"]["http"]["path"] = path
        event["headers"].update(device_signature.signed_headers(gate_id, secret, "POST", path, body, utc_now()),
                                **{"content-length": str(len(body))})
        started = time.perf_counter()
        response = gate_check.handler(event, context)
        wall = (time.perf_counter() - started) * 1000
        return {"wall": wall, **json.loads(response["body"])}

    frame = (photos / "obama3.jpg").read_bytes()
    face_path, card_path = f"/devices/gates/{gate_id}/check", f"/devices/gates/{gate_id}/check/card"
    request(face_path, frame)  # loads the gallery into the warm container
    faces = [request(face_path, frame) for _ in range(args.checks)]
    cards = [request(card_path, b'{"card": "0000-1111"}') for _ in range(args.checks)]
    accepted = sum(r["decision"] == "accept" and r.get("personId") == person for r in faces)

    decision = [r["latencyMs"] for r in faces]
    face_wall = [r["wall"] for r in faces]
    card_wall = [r["wall"] for r in cards]
    table = [
        (f"gallery of {args.residents:,} residents (version {version})", "", ""),
        ("face check, decode to decision p50 / p99", f"{pct(decision, 50)} / {pct(decision, 99)} ms", "< 150 ms"),
        ("face check, whole signed request p50 / p99", f"{pct(face_wall, 50)} / {pct(face_wall, 99)} ms", ""),
        ("card check (baseline), whole request p50 / p99", f"{pct(card_wall, 50)} / {pct(card_wall, 99)} ms", ""),
        ("accepted as the enrolled resident", f"{accepted} / {len(faces)}", "all"),
    ]
    for name, value, target in table:
        print(f"{name:52} {value:>22}  {target}")
    print(json.dumps({
        "residents": args.residents, "checks": args.checks,
        "decision_p50_ms": pct(decision, 50), "decision_p99_ms": pct(decision, 99),
        "request_p50_ms": pct(face_wall, 50), "request_p99_ms": pct(face_wall, 99),
        "card_request_p50_ms": pct(card_wall, 50), "card_request_p99_ms": pct(card_wall, 99),
        "face_over_card_p50": round(pct(face_wall, 50) / pct(card_wall, 50), 2),
        "accepted": accepted,
    }))
    local.stop()


if __name__ == "__main__":
    main()
