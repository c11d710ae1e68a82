"""The local cloud and the deployed one come from one file; this proves they have not drifted.

The deployed side is the CloudFormation that `serverless package` generated (bin/package-infra,
run by bin/test before pytest); the local side is what `sunflower dev` built in moto.
"""

import json
import os
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
    assert len(mappings) == sum(len(f.sqs) for f in local_cloud.catalog.functions.values())
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
