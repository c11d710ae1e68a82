"""Every minute: advance the office workflow instances whose timers are due (reminders, escalations, deadlines).

Works through every due shard in turns (a backlog in one does not starve the others) until none has
more or the time is up: the Lambda's remaining time minus a safety margin, and at most one schedule
period, so that the next scheduled run does not start on the same timers. What is left is due at
the next run.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from sunflower.auth.principals import SYSTEM
from sunflower.container import services

logger = Logger()
metrics = Metrics()
_SAFETY_MS = 10_000  # one call of wake_due (BATCH instances) takes well under this
_PERIOD_MS = 60_000  # the EventBridge schedule's rate(1 minute)
BATCH = 1000  # due timers per wake_due call


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event, context):
    workflows = services().office.workflows
    started_ms = context.get_remaining_time_in_millis()

    def time_left() -> bool:
        remaining = context.get_remaining_time_in_millis()
        return remaining > _SAFETY_MS and started_ms - remaining < _PERIOD_MS - _SAFETY_MS

    totals = {"woken": 0, "conflicts": 0, "failed": 0, "calls": 0}
    pending = list(range(workflows.due_shards))
    while pending and time_left():
        for shard in list(pending):
            if not time_left():
                break
            report = workflows.wake_due(SYSTEM, limit=BATCH, shards=[shard])
            totals["calls"] += 1
            totals["woken"] += report.woken
            totals["conflicts"] += report.conflicts
            totals["failed"] += report.failed
            # A full page that moved nothing on (every instance failed) would come back the same: next run.
            if not report.more or report.woken + report.conflicts == 0:
                pending.remove(shard)
    totals["more"] = bool(pending)
    if totals["woken"] or totals["failed"] or pending:
        logger.info("woke due office workflows", extra=totals)
    metrics.add_metric(name="OfficeTimersWoken", unit=MetricUnit.Count, value=totals["woken"])
    metrics.add_metric(name="OfficeTimerConflicts", unit=MetricUnit.Count, value=totals["conflicts"])
    metrics.add_metric(name="OfficeTimerFailures", unit=MetricUnit.Count, value=totals["failed"])
    return totals
