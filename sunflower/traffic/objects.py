"""Traffic's objects and queue: raw and refused batches and plan diagrams in the `traffic` bucket, sensor
batches on the `traffic-batches` queue (both named in infra/serverless.yml)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from urllib.parse import quote

from sunflower.aws import storage
from sunflower.aws.clients import client
from sunflower.common.settings import get_settings

BUCKET = "traffic"
QUEUE = "traffic-batches"


def _part(value: str) -> str:
    """A key segment from an id a sensor chose: readable when it is plain, never a path of its own."""
    return quote(value, safe="-_.~@+=,") or "_"


def raw_key(corridor_id: str, at: datetime, batch_id: str) -> str:
    """Partitioned by corridor and the UTC date of the batch's first interval (the same key on every retry)."""
    return f"raw/{_part(corridor_id)}/{at.astimezone(UTC):%Y-%m-%d}/{_part(batch_id)}.json"


def rejected_key(corridor_id: str, at: datetime, batch_id: str) -> str:
    return f"rejected/{_part(corridor_id)}/{at.astimezone(UTC):%Y-%m-%d}/{_part(batch_id)}.json"


def diagram_key(corridor_id: str, version: int) -> str:
    return f"diagrams/{_part(corridor_id)}/{version}.svg"


class TrafficObjects:
    def put_json(self, key: str, body: bytes) -> None:
        storage.put(BUCKET, key, body, "application/json")

    def put_svg(self, key: str, body: bytes) -> None:
        storage.put(BUCKET, key, body, "image/svg+xml")

    def get(self, key: str) -> bytes:
        return storage.get(BUCKET, key)

    def download_url(self, key: str, *, expires_s: int) -> str:
        return client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": storage.bucket(BUCKET), "Key": key}, ExpiresIn=expires_s
        )


@cache
def _queue_url(name: str, endpoint: str | None) -> str:
    return client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


class BatchQueue:
    """Where the device endpoint leaves sensor batches for the traffic function (which has scipy)."""

    def send(self, body: bytes | str, *, batch_id: str, corridor_id: str) -> str:
        text = body.decode() if isinstance(body, bytes) else body
        response = client("sqs").send_message(
            QueueUrl=_queue_url(get_settings().resource(QUEUE), os.environ.get("AWS_ENDPOINT_URL")),
            MessageBody=text,
            # The batch id travels beside the body too: the function's duplicate check keys on it, and
            # an operator reading a dead-letter queue sees whose batch it is without parsing the body.
            MessageAttributes={
                "batchId": {"DataType": "String", "StringValue": batch_id},
                "corridorId": {"DataType": "String", "StringValue": corridor_id},
            },
        )
        return response["MessageId"]
