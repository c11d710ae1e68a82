"""Every few minutes: seal the audit entries written since the last seal into S3."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from sunflower.container import services

logger = Logger()
metrics = Metrics()
_SAFETY_MS = 10_000


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event, context):
    audit = services().audit
    sealed = 0
    while context.get_remaining_time_in_millis() > _SAFETY_MS and (seal := audit.seal()):
        sealed += seal.last_seq - seal.first_seq + 1
        logger.info("sealed audit batch", extra={"first_seq": seal.first_seq, "last_seq": seal.last_seq})
    metrics.add_metric(name="AuditEntriesSealed", unit=MetricUnit.Count, value=sealed)
    return {"sealed": sealed}
