"""The cloud path for `sunflower bench traffic --on-batch traffic_handler:factory`.

Each sensor batch the simulation produces travels as it would in the district: onto the traffic-batches
queue (as the signed sensor endpoint leaves it), off it as a real SQS event, into
`functions.traffic_batch.handler`, and through the traffic service into DynamoDB and S3 of an embedded
moto server started in this process. The plan handed back to the simulation is what a controller would
fetch: the plan in force, whenever its version changed. A batch the function refused (or failed on)
raises here, so the bench reports it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_LOCAL = None


def _cloud():
    global _LOCAL
    if _LOCAL is None:
        # The handler's JSON logs and metrics would drown the bench's table; warnings still show.
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        from sunflower.local import cloud

        _LOCAL = cloud.start()
        _LOCAL.build()
    return _LOCAL


def factory(corridor, initial_plan):
    """FACTORY(corridor, plan0) -> on_batch(batch) -> Plan | None, for bench/traffic.py.

    Each run (one per seed, possibly in one process) starts from an empty embedded cloud.
    """
    _cloud().reset()
    from sunflower.auth.principals import Principal, Role
    from sunflower.aws.clients import client
    from sunflower.common.settings import get_settings
    from sunflower.container import services
    from sunflower.local.lambda_context import ACCOUNT_ID, LambdaContext
    from sunflower.local.pump import sqs_event
    from sunflower.traffic.objects import BatchQueue

    services.cache_clear()
    from functions import traffic_batch

    settings = get_settings()
    traffic = services().traffic
    engineer = Principal(id="bench", roles=frozenset({Role.TRAFFIC_ENGINEER}))
    traffic.create_corridor(engineer, corridor, initial_plan=initial_plan, purpose="sunflower bench traffic")
    sqs, queue = client("sqs"), BatchQueue()
    queue_name = settings.resource("traffic-batches")
    queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    queue_arn = f"arn:aws:sqs:{settings.region}:{ACCOUNT_ID}:{queue_name}"
    context = LambdaContext.for_invocation("trafficBatch", region=settings.region, timeout_s=60)
    last = {"version": initial_plan.version if initial_plan is not None else None}

    def on_batch(batch):
        body = batch.model_dump_json()
        queue.send(body, batch_id=batch.batch_id, corridor_id=batch.corridor_id)
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, MessageAttributeNames=["All"],
                                       AttributeNames=["All"], WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            raise RuntimeError(f"batch {batch.batch_id} did not arrive on {queue_name}")
        response = traffic_batch.handler(sqs_event(messages, queue_arn, settings.region), context)
        if response.get("batchItemFailures"):
            raise RuntimeError(f"the traffic function failed on batch {batch.batch_id} (it would be retried)")
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        refused = next((r for r in traffic.rejections(engineer, corridor.id, limit=1) if r.batch_id == batch.batch_id),
                       None)
        if refused is not None:
            raise RuntimeError(f"batch {batch.batch_id} rejected: {refused.code}: {refused.message}")
        plan, _ = traffic.current_plan(corridor.id)
        if plan.version == last["version"]:
            return None
        last["version"] = plan.version
        return plan

    return on_batch
