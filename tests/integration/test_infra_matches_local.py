"""The local cloud and the deployed one come from one file; this proves they have not drifted.

The deployed side is the CloudFormation that `serverless package` generated (bin/package-infra,
run by bin/test before pytest); the local side is what `sunflower dev` built in moto.
"""

import json
import os
import re
from pathlib import Path

import boto3
import pytest

from sunflower.auth.principals import Role

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / ".serverless" / "cloudformation-template-update-stack.json"
DEPLOYED_PREFIX, LOCAL_PREFIX = "sunflower-dev-", "sunflower-local-"


@pytest.fixture(scope="module")
def template() -> dict:
    if not TEMPLATE.exists():
        if os.environ.get("CI"):
            pytest.fail("infra/.serverless is missing: bin/test must run bin/package-infra before pytest")
        pytest.skip("run bin/package-infra first to generate the CloudFormation template")
    return json.loads(TEMPLATE.read_text())


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: v.get("Properties", {}) for k, v in template["Resources"].items() if v["Type"] == kind}


def _local(name: str) -> str:
    assert name.startswith(DEPLOYED_PREFIX), name
    return LOCAL_PREFIX + name.removeprefix(DEPLOYED_PREFIX)


def test_every_deployed_table_exists_locally_with_the_same_keys_indexes_and_ttl(local_cloud, template):
    dynamodb = boto3.client("dynamodb")
    tables = _of_type(template, "AWS::DynamoDB::Table")
    assert tables, "the template declares no tables"
    for props in tables.values():
        local = dynamodb.describe_table(TableName=_local(props["TableName"]))["Table"]
        assert local["KeySchema"] == props["KeySchema"]
        assert sorted(local["AttributeDefinitions"], key=str) == sorted(props["AttributeDefinitions"], key=str)
        deployed_indexes = {i["IndexName"]: i["KeySchema"] for i in props.get("GlobalSecondaryIndexes", [])}
        local_indexes = {i["IndexName"]: i["KeySchema"] for i in local.get("GlobalSecondaryIndexes", [])}
        assert local_indexes == deployed_indexes
        ttl = dynamodb.describe_time_to_live(TableName=local["TableName"])["TimeToLiveDescription"]
        if props.get("TimeToLiveSpecification", {}).get("Enabled"):
            assert ttl["AttributeName"] == props["TimeToLiveSpecification"]["AttributeName"]
            assert ttl["TimeToLiveStatus"] == "ENABLED"


def test_every_deployed_bucket_exists_locally_with_versioning_lock_and_notifications(local_cloud, template):
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    for props in _of_type(template, "AWS::S3::Bucket").values():
        if "BucketName" not in props:
            continue  # the framework's own deployment bucket
        name = _local(props["BucketName"])
        versioning = s3.get_bucket_versioning(Bucket=name).get("Status")
        assert versioning == props.get("VersioningConfiguration", {}).get("Status")
        if props.get("ObjectLockEnabled"):
            assert s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
        deployed = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        local = s3.get_bucket_notification_configuration(Bucket=name).get("QueueConfigurations", [])
        assert len(local) == len(deployed)
        for queue_config in local:
            sqs.get_queue_url(QueueName=queue_config["QueueArn"].rsplit(":", 1)[1])


def test_every_deployed_queue_exists_locally_with_its_dead_letter_queue(local_cloud, template):
    sqs = boto3.client("sqs")
    queues = _of_type(template, "AWS::SQS::Queue")
    for props in queues.values():
        url = sqs.get_queue_url(QueueName=_local(props["QueueName"]))["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if "RedrivePolicy" in props:
            redrive = json.loads(attributes["RedrivePolicy"])
            assert redrive["maxReceiveCount"] == int(props["RedrivePolicy"]["maxReceiveCount"])


def test_every_deployed_stream_exists_locally_with_its_shards_retention_and_encryption(local_cloud, template):
    kinesis = boto3.client("kinesis")
    streams = _of_type(template, "AWS::Kinesis::Stream")
    assert streams, "the template declares no streams"
    for props in streams.values():
        local = kinesis.describe_stream_summary(StreamName=_local(props["Name"]))["StreamDescriptionSummary"]
        assert local["StreamStatus"] == "ACTIVE"
        assert local["StreamModeDetails"]["StreamMode"] == props["StreamModeDetails"]["StreamMode"]
        if "ShardCount" in props:
            assert local["OpenShardCount"] == props["ShardCount"]
        assert local["RetentionPeriodHours"] == props.get("RetentionPeriodHours", 24)
        assert local["EncryptionType"] == props.get("StreamEncryption", {}).get("EncryptionType", "NONE")


def test_buses_keys_and_roles_match(local_cloud, template):
    buses = {b["Name"] for b in boto3.client("events").list_event_buses()["EventBuses"]}
    for props in _of_type(template, "AWS::Events::EventBus").values():
        assert _local(props["Name"]) in buses
    aliases = {a["AliasName"] for a in boto3.client("kms").list_aliases()["Aliases"]}
    for props in _of_type(template, "AWS::KMS::Alias").values():
        assert props["AliasName"].replace(DEPLOYED_PREFIX, LOCAL_PREFIX) in aliases
    deployed_groups = {p["GroupName"] for p in _of_type(template, "AWS::Cognito::UserPoolGroup").values()}
    local_groups = {
        g["GroupName"]
        for g in boto3.client("cognito-idp").list_groups(UserPoolId=local_cloud.identity.user_pool_id)["Groups"]
    }
    assert deployed_groups == local_groups == {r.value for r in Role}


def test_the_local_event_wiring_is_the_deployed_one(local_cloud, template):
    """Same handlers; the pump consumes the queues Lambda polls; the scheduler runs the same rates."""
    functions = _of_type(template, "AWS::Lambda::Function")
    deployed_handlers = {p["Handler"] for p in functions.values()}
    assert deployed_handlers == {f.handler for f in local_cloud.catalog.functions.values()}
    rules = {p["ScheduleExpression"] for p in _of_type(template, "AWS::Events::Rule").values() if "ScheduleExpression" in p}
    assert rules == {rate for f in local_cloud.catalog.functions.values() for rate in f.schedules}
    mappings = _of_type(template, "AWS::Lambda::EventSourceMapping")
    functions_by_id = {logical_id: p["Handler"] for logical_id, p in functions.items()}
    deployed = sorted(
        (functions_by_id[p["FunctionName"]["Fn::GetAtt"][0]], p["EventSourceArn"]["Fn::GetAtt"][0]) for p in mappings.values()
    )
    local = sorted(
        [(f.handler, queue) for f in local_cloud.catalog.functions.values() for queue, _, _ in f.sqs]
        + [(f.handler, s.stream) for f in local_cloud.catalog.functions.values() for s in f.kinesis]
    )
    assert deployed == local
    # A stream's mapping is read locally with the same settings.
    for props in mappings.values():
        stream = props["EventSourceArn"]["Fn::GetAtt"][0]
        specs = [s for f in local_cloud.catalog.functions.values() for s in f.kinesis if s.stream == stream]
        for spec in specs:
            assert (props["BatchSize"], props["StartingPosition"], props.get("FunctionResponseTypes", [])) == (
                spec.batch_size, spec.starting_position, ["ReportBatchItemFailures"] if spec.partial_failures else [])
            assert props.get("BisectBatchOnFunctionError", False) == spec.bisect
            assert props.get("MaximumRetryAttempts", -1) == spec.max_retries
            on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            assert (_refs(on_failure) or {None}) == {spec.on_failure}
    route_keys = sorted(p["RouteKey"] for p in _of_type(template, "AWS::ApiGatewayV2::Route").values())
    assert route_keys == sorted(r for f in local_cloud.catalog.functions.values() for r in f.routes)


def _function(template: dict, name: str) -> tuple[str, dict]:
    """(logical id, properties) of the deployed function `name` (its key under `functions:`)."""
    for logical_id, props in _of_type(template, "AWS::Lambda::Function").items():
        if props["FunctionName"] == f"{DEPLOYED_PREFIX}{name}":
            return logical_id, props
    raise AssertionError(f"no function {name} in the template")


def _refs(node) -> set[str]:
    """Every logical id a template fragment names with Ref or Fn::GetAtt."""
    if isinstance(node, dict):
        found = {node["Ref"]} if isinstance(node.get("Ref"), str) else set()
        if isinstance(node.get("Fn::GetAtt"), list):
            found.add(node["Fn::GetAtt"][0])
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node))
    return set()


def test_the_gate_table_expires_access_events_and_has_both_indexes(local_cloud, template):
    from sunflower.common.settings import get_settings

    deployed = template["Resources"]["GateTable"]["Properties"]
    assert deployed["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert deployed["SSESpecification"]["SSEType"] == "KMS" and deployed["DeletionProtectionEnabled"] is True
    name = get_settings().resource("gate")
    assert name == _local(deployed["TableName"])
    dynamodb = boto3.client("dynamodb")
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    indexes = {i["IndexName"]: i for i in dynamodb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"]}
    assert sorted(indexes) == ["gsi1", "gsi2"]
    assert all(i["Projection"]["ProjectionType"] == "ALL" for i in indexes.values())


def test_the_galleries_bucket_is_not_versioned_so_a_deleted_gallery_is_gone(local_cloud, template):
    from sunflower.common.settings import get_settings

    deployed = template["Resources"]["GalleriesBucket"]["Properties"]
    assert "VersioningConfiguration" not in deployed
    assert deployed["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["BucketKeyEnabled"] is True
    assert deployed["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    name = get_settings().bucket("galleries")
    assert name == _local(deployed["BucketName"])
    s3 = boto3.client("s3")
    assert "Status" not in s3.get_bucket_versioning(Bucket=name)
    rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    assert [r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in rules] == [1]
    policies = [p for p in _of_type(template, "AWS::S3::BucketPolicy").values() if p["Bucket"] == {"Ref": "GalleriesBucket"}]
    assert [s["Sid"] for p in policies for s in p["PolicyDocument"]["Statement"]] == ["TlsOnly"]


def test_the_gate_function_has_the_three_layers_its_routes_and_a_warm_instance(local_cloud, template):
    resources = template["Resources"]
    logical_id, gate = _function(template, "gateCheck")
    assert gate["Handler"] == "functions/gate_check.handler"
    assert gate["Layers"] == [{"Ref": "DepsLambdaLayer"}, {"Ref": "MlLambdaLayer"}, {"Ref": "ModelsLambdaLayer"}]
    for layer, artifact in (("MlLambdaLayer", "ml-layer.zip"), ("ModelsLambdaLayer", "models-layer.zip")):
        assert resources[layer]["Properties"]["Content"]["S3Key"].endswith("/" + artifact)
    assert (gate["MemorySize"], gate["Timeout"]) == (2048, 10)
    assert gate["Environment"]["Variables"]["SUNFLOWER_MODEL_DIR"] == "/opt/models/face"
    assert gate["Role"] == {"Fn::GetAtt": ["GateCheckRole", "Arn"]}
    local = local_cloud.catalog.functions["gateCheck"]
    assert local.layers == ("DepsLambdaLayer", "MlLambdaLayer", "ModelsLambdaLayer")

    aliases = [p for p in _of_type(template, "AWS::Lambda::Alias").values() if p["FunctionName"] == {"Ref": logical_id}]
    assert [a["ProvisionedConcurrencyConfig"]["ProvisionedConcurrentExecutions"] for a in aliases] == [1]
    integrations = {k for k, p in _of_type(template, "AWS::ApiGatewayV2::Integration").items() if logical_id in _refs(p)}
    routes = {p["RouteKey"] for p in _of_type(template, "AWS::ApiGatewayV2::Route").values() if _refs(p["Target"]) & integrations}
    assert routes == {"POST /devices/gates/{gateId}/check", "POST /devices/gates/{gateId}/check/{method}"}
    assert routes == set(local.routes)

    # The API hands enrolment photos to it by name, and may invoke it.
    _, api = _function(template, "api")
    assert api["Environment"]["Variables"]["SUNFLOWER_FACE_ENCODER_FUNCTION"] == gate["FunctionName"]
    assert _local(gate["FunctionName"]) == local_cloud.catalog.function_name(local)
    statements = resources["ApiRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert any(s["Action"] == "lambda:InvokeFunction" and logical_id in _refs(s["Resource"]) for s in statements)


def _statements(template: dict, role: str) -> list[dict]:
    return [s for p in template["Resources"][role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def _granted(template: dict, role: str, resource: str) -> set[str]:
    """The actions a role is allowed on a resource (by logical id, the resource or anything in it)."""
    actions: set[str] = set()
    for statement in _statements(template, role):
        named = _refs(statement["Resource"]) | set(re.findall(r"\$\{(\w+)[.}]", json.dumps(statement["Resource"])))
        if statement["Effect"] == "Allow" and resource in named:  # !GetAtt X.Arn, !Sub '${X.Arn}/...'
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def test_the_traffic_table_expires_items_by_ttl_and_has_one_index(local_cloud, template):
    from sunflower.common.settings import get_settings

    deployed = template["Resources"]["TrafficTable"]["Properties"]
    assert deployed["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert deployed["SSESpecification"]["SSEType"] == "KMS" and deployed["DeletionProtectionEnabled"] is True
    assert deployed["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert template["Resources"]["TrafficTable"]["DeletionPolicy"] == "Retain"
    name = get_settings().resource("traffic")
    assert name == _local(deployed["TableName"])
    dynamodb = boto3.client("dynamodb")
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    table = dynamodb.describe_table(TableName=name)["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert [(i["IndexName"], [k["AttributeName"] for k in i["KeySchema"]], i["Projection"]["ProjectionType"])
            for i in table["GlobalSecondaryIndexes"]] == [("gsi1", ["gsi1pk", "gsi1sk"], "ALL")]


def test_the_traffic_bucket_moves_raw_batches_to_infrequent_access_then_expires_them(local_cloud, template):
    from sunflower.common.settings import get_settings

    deployed = template["Resources"]["TrafficBucket"]["Properties"]
    encryption = deployed["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert all(deployed["PublicAccessBlockConfiguration"].values())
    policies = [p for p in _of_type(template, "AWS::S3::BucketPolicy").values() if p["Bucket"] == {"Ref": "TrafficBucket"}]
    assert [s["Sid"] for p in policies for s in p["PolicyDocument"]["Statement"]] == ["TlsOnly"]
    name = get_settings().bucket("traffic")
    assert name == _local(deployed["BucketName"])

    rules = {r["ID"]: r for r in boto3.client("s3").get_bucket_lifecycle_configuration(Bucket=name)["Rules"]}
    raw = rules["RawBatches"]
    assert raw["Filter"] == {"Prefix": "raw/"} and raw["Status"] == "Enabled"
    assert raw["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert raw["Expiration"] == {"Days": 400}
    assert rules["RejectedBatches"]["Filter"] == {"Prefix": "rejected/"}
    assert rules["RejectedBatches"]["Expiration"] == {"Days": 400}
    assert rules["AbortIncompleteUploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert sorted(rules) == sorted(r["Id"] for r in deployed["LifecycleConfiguration"]["Rules"])


def test_the_traffic_batches_queue_feeds_the_traffic_function_and_redrives_to_its_dlq(local_cloud, template):
    from sunflower.common.settings import get_settings

    deployed = template["Resources"]["TrafficBatchesQueue"]["Properties"]
    _, function = _function(template, "trafficBatch")
    assert deployed["VisibilityTimeout"] == 6 * function["Timeout"] == 360
    assert deployed["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["TrafficBatchesDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 3,
    }
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=get_settings().resource("traffic-batches"))["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "360"
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":" + get_settings().resource("traffic-batches-dlq"))
    assert redrive["maxReceiveCount"] == 3

    local = local_cloud.catalog.functions["trafficBatch"]
    assert local.handler == "functions/traffic_batch.handler"
    assert local.sqs == (("TrafficBatchesQueue", 10, True),)
    mappings = [p for p in _of_type(template, "AWS::Lambda::EventSourceMapping").values()
                if p["EventSourceArn"] == {"Fn::GetAtt": ["TrafficBatchesQueue", "Arn"]}]
    assert [(m["BatchSize"], m["FunctionResponseTypes"]) for m in mappings] == [(10, ["ReportBatchItemFailures"])]


def test_the_traffic_sensor_stream_feeds_the_traffic_function_and_dead_letters_to_the_batches_dlq(local_cloud, template):
    from sunflower.common.settings import get_settings
    from sunflower.local.catalog import StreamSourceSpec

    deployed = template["Resources"]["TrafficSensorStream"]["Properties"]
    assert (deployed["ShardCount"], deployed["RetentionPeriodHours"]) == (1, 24)
    assert deployed["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": {"Fn::GetAtt": ["DataKey", "Arn"]}}
    name = get_settings().resource("traffic-sensors")
    assert name == _local(deployed["Name"]) == local_cloud.catalog.name_of("TrafficSensorStream")
    summary = boto3.client("kinesis").describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert (summary["OpenShardCount"], summary["EncryptionType"]) == (1, "KMS")

    local = local_cloud.catalog.functions["trafficBatch"]
    assert local.kinesis == (
        StreamSourceSpec("TrafficSensorStream", 10, True, "TRIM_HORIZON", True, 3, "TrafficBatchesDeadLetterQueue"),
    )
    (mapping,) = [p for p in _of_type(template, "AWS::Lambda::EventSourceMapping").values()
                  if p["EventSourceArn"] == {"Fn::GetAtt": ["TrafficSensorStream", "Arn"]}]
    assert mapping["FunctionName"] == {"Fn::GetAtt": [_function(template, "trafficBatch")[0], "Arn"]}
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["TrafficBatchesDeadLetterQueue", "Arn"]}}
    }


def test_the_pump_hands_traffic_batches_to_the_traffic_handler(local_cloud):
    """Lambda's event source mapping, locally: the batch arrives at functions/traffic_batch.handler."""
    from sunflower.common.settings import get_settings
    from sunflower.local.pump import EventPump

    # given a stand-in for the handler (the pump resolves handlers by their serverless.yml name)
    calls = []

    def resolve(spec):
        return lambda event, context: calls.append((spec.handler, event)) or {"batchItemFailures": []}

    pump = EventPump(local_cloud.catalog, resolve)
    source = next(s for s in pump.sources if s.queue == "TrafficBatchesQueue")
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=get_settings().resource("traffic-batches"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"corridorId": "c1", "batchId": "b1"}')

    # when the pump polls the queue
    delivered = pump.poll(source)

    # then the traffic handler got Lambda's SQS event and the message is gone
    assert delivered == 1
    [(handler, event)] = calls
    assert handler == "functions/traffic_batch.handler"
    assert event["Records"][0]["eventSourceARN"] == local_cloud.catalog.queue_arn("TrafficBatchesQueue")
    assert pump.pending()[get_settings().resource("traffic-batches")] == 0


def test_the_scheduler_runs_the_office_timers_every_minute(local_cloud, template):
    from datetime import UTC, datetime, timedelta

    from sunflower.local.scheduler import Scheduler

    _, deployed = _function(template, "officeTimers")
    assert (deployed["Handler"], deployed["Timeout"]) == ("functions/office_timers.handler", 300)
    calls = []
    t0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    scheduler = Scheduler(local_cloud.catalog, lambda spec: lambda event, context: calls.append(spec.handler), now=lambda: t0)
    [schedule] = [s for s in scheduler.schedules if s.function.name == "officeTimers"]
    assert schedule.period == timedelta(minutes=1)

    scheduler.run_due(t0 + timedelta(minutes=1))
    assert "functions/office_timers.handler" in calls


def test_every_function_has_the_layers_it_deploys_with_and_the_build_measures_them(local_cloud, template):
    from sunflower import build

    resources = template["Resources"]
    artifacts = {
        logical_id: r["Properties"]["Content"]["S3Key"].rsplit("/", 1)[1]
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Lambda::LayerVersion"
    }
    assert artifacts["TrafficLambdaLayer"] == "traffic-layer.zip" and artifacts["OfficeLambdaLayer"] == "office-layer.zip"
    assert set(artifacts.values()) == {build.DEPS_ZIP, build.MODELS_ZIP, *(x.zip_name for x in build.EXTRA_LAYERS.values())}
    for spec in local_cloud.catalog.functions.values():
        _, deployed = _function(template, spec.name)
        assert tuple(layer["Ref"] for layer in deployed["Layers"]) == spec.layers, spec.name
    expected = {
        "api": ("DepsLambdaLayer", "OfficeLambdaLayer"),
        "trafficBatch": ("DepsLambdaLayer", "TrafficLambdaLayer"),
        "officeTimers": ("DepsLambdaLayer", "OfficeLambdaLayer"),
        "gateCheck": ("DepsLambdaLayer", "MlLambdaLayer", "ModelsLambdaLayer"),
    }
    for name, layers in expected.items():
        assert local_cloud.catalog.functions[name].layers == layers
    # The size gate adds up what each function really deploys with.
    for function, name in (("gate", "gateCheck"), ("traffic", "trafficBatch"), ("api", "api"), ("api", "officeTimers")):
        zips = (build.APP_ZIP, *(artifacts[layer] for layer in expected[name]))
        assert build.FUNCTIONS[function] == zips, name


def test_the_traffic_and_office_roles_grant_what_their_code_calls(template):
    assert _granted(template, "TrafficBatchRole", "TrafficBatchesQueue") == {
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility",
    }  # fmt: skip
    # The stream's mapping reads with the function's role and sends spent records' metadata to the DLQ;
    # kms:Decrypt for the stream's key is among the data key's grants below.
    assert _granted(template, "TrafficBatchRole", "TrafficSensorStream") == {
        "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream", "kinesis:DescribeStreamSummary",
        "kinesis:ListShards",
    }  # fmt: skip
    assert any(s["Action"] == "kinesis:ListStreams" and s["Resource"] == "*" for s in _statements(template, "TrafficBatchRole"))
    assert _granted(template, "TrafficBatchRole", "TrafficBatchesDeadLetterQueue") == {"sqs:SendMessage"}
    assert "kms:Decrypt" in _granted(template, "TrafficBatchRole", "DataKey")
    # A sensor gateway is given the managed policy: put records, encrypted with the data key.
    gateway = template["Resources"]["TrafficSensorGatewayPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert {a for s in gateway if "TrafficSensorStream" in _refs(s["Resource"]) for a in s["Action"]} >= {
        "kinesis:PutRecord", "kinesis:PutRecords"}
    assert any(s["Action"] == "kms:GenerateDataKey" and _refs(s["Resource"]) == {"DataKey"} for s in gateway)
    assert {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:ConditionCheckItem"} <= _granted(template, "TrafficBatchRole", "TrafficTable")
    assert not _granted(template, "TrafficBatchRole", "IdempotencyTable")  # batch ids are claimed in its own table
    assert {"s3:GetObject", "s3:PutObject"} <= _granted(template, "TrafficBatchRole", "TrafficBucket")
    assert "events:PutEvents" in _granted(template, "TrafficBatchRole", "EventBus")

    # The API enqueues sensor batches and runs the office engine: batch writes (puts and deletes of
    # timeline, inbox and timer items), conditional puts and updates.
    assert {"sqs:SendMessage", "sqs:GetQueueUrl"} <= _granted(template, "ApiRole", "TrafficBatchesQueue")
    # Both read traffic objects; a missing one must read as NoSuchKey (sunflower.aws.storage: NotFound).
    for role in ("ApiRole", "TrafficBatchRole"):
        assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket"} <= _granted(template, role, "TrafficBucket")
    office = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem",
              "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"}
    assert office <= _granted(template, "ApiRole", "OfficeTable")
    assert office <= _granted(template, "OfficeTimersRole", "OfficeTable")
    assert _granted(template, "OfficeTimersRole", "RegistriesTable") == {"dynamodb:GetItem", "dynamodb:BatchGetItem"}
    # Transactions need no action of their own (and there is none: dynamodb:TransactWriteItems is not an IAM action).
    assert not any("Transact" in action for role in ("ApiRole", "OfficeTimersRole")
                   for s in _statements(template, role) for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
