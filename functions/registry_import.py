"""Registry spreadsheets uploaded to the imports bucket -> an ImportJob: every row validated, valid rows written.

S3 announces each upload under incoming/ on ImportsQueue (batch size 1). A redelivered
announcement of the same upload (same bucket, key, ETag and upload) does not import again:
Powertools idempotency returns the first run's summary, and the job store recognises the job too.
"""

import json
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import idempotent_function

from sunflower.aws import idempotency
from sunflower.container import services
from sunflower.registries.imports import ImportStatus, Upload

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
idempotency_config = idempotency.config("[bucket, key, etag, upload_id]")


def _import(upload: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in upload.items() if k != "upload_id"}
    job = services().imports.run(Upload(**fields))
    # Counts and ids only: rows, file names and reasons may carry personal data.
    logger.info(
        "registry import finished",
        extra={"job_id": job.id, "kind": job.kind.value if job.kind else None, "department": job.department,
               "status": job.status.value, "total": job.total, "accepted": job.accepted,
               "unchanged": job.unchanged, "rejected": job.rejected, "file_rejected": bool(job.file_error)},
    )
    metrics.add_metric(name="RowsAccepted", unit=MetricUnit.Count, value=job.accepted)
    metrics.add_metric(name="RowsUnchanged", unit=MetricUnit.Count, value=job.unchanged)
    metrics.add_metric(name="RowsRejected", unit=MetricUnit.Count, value=job.rejected)
    metrics.add_metric(
        name="ImportFilesRejected" if job.status is ImportStatus.FAILED else "ImportFilesImported",
        unit=MetricUnit.Count, value=1,
    )
    return job.summary()


@cache
def _idempotent_import():
    # Built on first use, so the persistence layer's client is made against the configured endpoint.
    return idempotent_function(
        data_keyword_argument="upload", config=idempotency_config, persistence_store=idempotency.persistence_layer()
    )(_import)


def _record(record: SQSRecord) -> None:
    notification = json.loads(record.body)
    if notification.get("Event") == "s3:TestEvent":
        return  # S3 sends one when the notification is configured
    for s3_record in notification.get("Records", []):
        if not s3_record.get("eventName", "").startswith("ObjectCreated:"):
            continue
        upload = Upload.from_s3_record(s3_record)
        if upload.key.endswith("/"):
            continue  # a "folder" made in the console, not a file
        _idempotent_import()(upload={**upload.__dict__, "upload_id": upload.upload_id})


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict, context: Any) -> dict:
    idempotency_config.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)
