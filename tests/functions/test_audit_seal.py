"""functions/audit_seal.py on its EventBridge schedule: seals what is new, and nothing twice."""

import json

import boto3

from sunflower.audit.models import AuditAction, AuditEvent
from sunflower.common.settings import get_settings


def _record(n: int) -> None:
    from sunflower.container import services

    for i in range(n):
        services().audit.record(
            AuditEvent("person:p1", ("police",), AuditAction.READ, "person", f"P{i}", "case 2026-118")
        )


def test_the_scheduled_run_seals_new_entries_into_s3_once(local_cloud, lambda_context, events):
    from functions import audit_seal

    _record(3)
    event = events("eventbridge_scheduled.json")

    first = audit_seal.handler(event, lambda_context)
    second = audit_seal.handler(event, lambda_context)

    assert first == {"sealed": 3}
    assert second == {"sealed": 0}
    s3 = boto3.client("s3")
    bucket = get_settings().bucket("audit")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["batches/000000000001-000000000003.jsonl"]
    lines = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read().decode().splitlines()
    assert [json.loads(line)["subject_id"] for line in lines] == ["P0", "P1", "P2"]
