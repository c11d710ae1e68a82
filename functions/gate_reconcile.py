"""Every hour: withdraw from each community's gallery anyone the population registry says has left.

Withdrawal normally happens the moment the registry changes (a listener on RegistryService); this is
the backstop for a change whose listener failed. Pure Python: it runs without the models layer.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from sunflower.container import services

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event, context):
    removed = services().gate.reconcile()
    total = sum(removed.values())
    if total:
        logger.info("withdrew departed residents", extra={"removed": removed})
    metrics.add_metric(name="DepartedResidentsWithdrawn", unit=MetricUnit.Count, value=total)
    return {"communities": len(removed), "withdrawn": total}
