"""Sensor batches -> the corridor retimed: from SQS (the device endpoint's queue) or Kinesis, one batch a record.

Partial batch failure: a record that fails transiently (DynamoDB or S3 unavailable, the corridor
contended past its retries) raises and only it is retried, then dead-lettered. A batch that can never
be accepted (malformed, an unknown detector or corridor, impossible counts, overlapping or future
intervals, no feasible cycle) is a permanent error: the service keeps it with its raw body and the
reason (REJECTED in the traffic table, rejected/ in the bucket), it is logged, and the record is
acknowledged instead of retried forever.

Idempotent by batch id through the service's own duplicate check rather than Powertools idempotency:
the batch id is claimed in the same DynamoDB transaction that changes the corridor, so a batch takes
effect exactly once however often SQS or Kinesis delivers it, and the check holds for every way in
(the queue, a stream, a direct call). A Powertools record would be a second write outside that
transaction, keyed the same way, and could not make it any more exact.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from sunflower.container import services
from sunflower.traffic.records import Outcome

logger = Logger()
metrics = Metrics()
processors = {
    "aws:sqs": BatchProcessor(event_type=EventType.SQS),
    "aws:kinesis": BatchProcessor(event_type=EventType.KinesisDataStreams),
}
_METRICS = {Outcome.ACCEPTED: "BatchesAccepted", Outcome.DUPLICATE: "BatchesDuplicate",
            Outcome.REJECTED: "BatchesRejected"}


def _body(record: SQSRecord | KinesisStreamRecord) -> bytes:
    if isinstance(record, KinesisStreamRecord):
        return record.kinesis.data_as_bytes()
    return record.body.encode()


def _record(record: SQSRecord | KinesisStreamRecord) -> None:
    result = services().traffic.receive(_body(record))
    metrics.add_metric(name=_METRICS[result.outcome], unit=MetricUnit.Count, value=1)
    if result.new_plan is not None:
        metrics.add_metric(name="PlansCreated", unit=MetricUnit.Count, value=1)
    logger.info("traffic batch", extra={
        "corridor_id": result.corridor_id, "batch_id": result.batch_id, "outcome": result.outcome.value,
        "new_plan": result.new_plan.version if result.new_plan else None,
        "in_force": result.in_force.version if result.in_force else None,
    })


def _source(event: dict) -> str:
    """Which trigger sent the event: every record of one invocation comes from the same source."""
    records = event.get("Records") or [{}]
    source = records[0].get("eventSource") or records[0].get("EventSource") or "aws:sqs"
    if source not in processors:
        raise ValueError(f"traffic batches come from SQS or Kinesis, not {source}")
    return source


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict, context: Any) -> dict:
    return process_partial_response(event=event, record_handler=_record, processor=processors[_source(event)],
                                    context=context)
