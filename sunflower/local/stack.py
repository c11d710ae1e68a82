"""Build, in the embedded moto server, every resource infra/serverless.yml declares."""

import json
from dataclasses import dataclass

from sunflower.aws.clients import client
from sunflower.local.catalog import Catalog


@dataclass(frozen=True)
class Identity:
    """The local Cognito user pool: the issuer of people's tokens."""

    user_pool_id: str
    client_id: str
    issuer: str
    jwks_url: str


def build(catalog: Catalog, endpoint: str, *, notifications: bool = True) -> Identity | None:
    """Create what is missing; safe to run on a server that already has some of it.

    Without notifications, objects put while restoring state do not trigger processing again;
    `connect_notifications` adds them afterwards.
    """
    _tables(catalog)
    _keys(catalog)
    _queues(catalog)
    _streams(catalog)
    _buckets(catalog)
    if notifications:
        connect_notifications(catalog)
    _buses(catalog)
    return _identity(catalog, endpoint)


def _tables(catalog: Catalog) -> None:
    dynamodb = client("dynamodb")
    existing = set(dynamodb.list_tables()["TableNames"])
    for spec in catalog.tables.values():
        kwargs = {k: v for k, v in spec.items() if not k.startswith("_")}
        if kwargs["TableName"] not in existing:
            dynamodb.create_table(**kwargs)
    for table, attribute in catalog.ttl.items():
        dynamodb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
        )


def _keys(catalog: Catalog) -> None:
    kms = client("kms")
    existing = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    for alias in catalog.key_aliases:
        if alias not in existing:
            key_id = kms.create_key(Description=f"local {alias}")["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=alias, TargetKeyId=key_id)


def _queues(catalog: Catalog) -> None:
    sqs = client("sqs")
    # Dead-letter queues first: a redrive policy must name a queue that exists.
    ordered = sorted(catalog.queues.values(), key=lambda q: q.dead_letter is not None)
    for queue in ordered:
        attributes = dict(queue.attributes)
        if queue.dead_letter:
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": catalog.queue_arn(queue.dead_letter), "maxReceiveCount": queue.max_receive_count}
            )
        sqs.create_queue(QueueName=queue.name, Attributes=attributes)


def _streams(catalog: Catalog) -> None:
    kinesis = client("kinesis")
    existing = set(kinesis.list_streams()["StreamNames"])
    aliases = {key: alias for alias, key in catalog.key_aliases.items()}  # key logical id -> its alias
    for stream in catalog.streams.values():
        if stream.name in existing:
            continue
        if stream.shard_count is None:
            kinesis.create_stream(StreamName=stream.name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        else:
            kinesis.create_stream(
                StreamName=stream.name,
                ShardCount=stream.shard_count,
                StreamModeDetails={"StreamMode": "PROVISIONED"},
            )
        kinesis.get_waiter("stream_exists").wait(StreamName=stream.name, WaiterConfig={"Delay": 1})
        if stream.retention_hours > 24:  # a new stream keeps records 24 h
            kinesis.increase_stream_retention_period(
                StreamName=stream.name, RetentionPeriodHours=stream.retention_hours
            )
        if stream.key:
            kinesis.start_stream_encryption(
                StreamName=stream.name, EncryptionType="KMS", KeyId=aliases.get(stream.key, stream.key)
            )


def _buckets(catalog: Catalog) -> None:
    s3 = client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in catalog.buckets.values():
        if bucket.name not in existing:
            kwargs: dict = {"Bucket": bucket.name, "ObjectLockEnabledForBucket": bucket.object_lock}
            if catalog.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": catalog.region}
            s3.create_bucket(**kwargs)
        if bucket.versioned:
            s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
        if bucket.cors_rules:
            s3.put_bucket_cors(Bucket=bucket.name, CORSConfiguration={"CORSRules": list(bucket.cors_rules)})
        if bucket.lifecycle_rules:
            s3.put_bucket_lifecycle_configuration(
                Bucket=bucket.name, LifecycleConfiguration={"Rules": list(bucket.lifecycle_rules)}
            )


def connect_notifications(catalog: Catalog) -> None:
    s3 = client("s3")
    for bucket in catalog.buckets.values():
        configurations = []
        for n in bucket.notifications:
            config: dict = {"QueueArn": catalog.queue_arn(n.queue), "Events": list(n.events)}
            rules = [{"Name": k, "Value": v} for k, v in (("prefix", n.prefix), ("suffix", n.suffix)) if v]
            if rules:
                config["Filter"] = {"Key": {"FilterRules": rules}}
            configurations.append(config)
        if configurations:
            s3.put_bucket_notification_configuration(
                Bucket=bucket.name, NotificationConfiguration={"QueueConfigurations": configurations}
            )


def _buses(catalog: Catalog) -> None:
    events = client("events")
    existing = {b["Name"] for b in events.list_event_buses()["EventBuses"]}
    for name in catalog.buses.values():
        if name not in existing:
            events.create_event_bus(Name=name)


def _identity(catalog: Catalog, endpoint: str) -> Identity | None:
    spec = catalog.user_pool
    if spec is None:
        return None
    cognito = client("cognito-idp")
    pools = {p["Name"]: p["Id"] for p in cognito.list_user_pools(MaxResults=60)["UserPools"]}
    pool_id = pools.get(spec.name)
    if pool_id is None:
        pool_id = cognito.create_user_pool(
            PoolName=spec.name,
            Schema=[{"Name": a, "AttributeDataType": "String", "Mutable": True} for a in spec.custom_attributes],
        )["UserPool"]["Id"]
    clients = {
        c["ClientName"]: c["ClientId"]
        for c in cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    }
    client_id = clients.get(spec.client_name)
    if client_id is None:
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=spec.client_name,
            # Locally `sunflower token` signs people in with a password; apps in the cloud use SRP.
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
    existing_groups = {g["GroupName"] for g in cognito.list_groups(UserPoolId=pool_id)["Groups"]}
    for group in spec.groups:
        if group not in existing_groups:
            cognito.create_group(UserPoolId=pool_id, GroupName=group)
    # moto signs with the same key for every pool and names the issuer as Cognito does.
    return Identity(
        user_pool_id=pool_id,
        client_id=client_id,
        issuer=f"https://cognito-idp.{catalog.region}.amazonaws.com/{pool_id}",
        jwks_url=f"{endpoint}/{pool_id}/.well-known/jwks.json",
    )
