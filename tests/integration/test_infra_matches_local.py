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
