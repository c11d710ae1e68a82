"""Read infra/serverless.yml into the plain facts the local cloud needs: one source of truth."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SERVERLESS_YML = Path(__file__).resolve().parents[2] / "infra" / "serverless.yml"
ACCOUNT_ID = "123456789012"  # moto's default account
# CloudFormation types that have no local counterpart to build (IAM is not enforced by moto;
# the secret and groups are read elsewhere).
NOT_BUILT = {
    "AWS::IAM::Role",
    "AWS::IAM::ManagedPolicy",
    "AWS::S3::BucketPolicy",
    "AWS::SecretsManager::Secret",
    "AWS::SQS::QueuePolicy",
    "AWS::Cognito::UserPoolGroup",
}


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub ...) turned into long form."""


def _tag(name: str):
    def construct(loader: yaml.Loader, node: yaml.Node) -> dict:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _short, _long in {
    "!Ref": "Ref",
    "!GetAtt": "Fn::GetAtt",
    "!Sub": "Fn::Sub",
    "!Join": "Fn::Join",
    "!If": "Fn::If",
    "!Select": "Fn::Select",
    "!Split": "Fn::Split",
    "!Equals": "Fn::Equals",
    "!Not": "Fn::Not",
    "!ImportValue": "Fn::ImportValue",
    "!FindInMap": "Fn::FindInMap",
}.items():
    _CfnLoader.add_constructor(_short, _tag(_long))

_VARIABLE = re.compile(r"\$\{((?:self|sls|opt):[^{}]+)\}")


def _resolve_variables(doc: dict, stage: str) -> dict:
    """Serverless variables the template uses: ${self:...}, ${sls:stage}, ${opt:x, 'default'}."""

    def lookup(expr: str) -> str:
        source, _, rest = expr.partition(":")
        name, _, fallback = rest.partition(",")
        name = name.strip()
        if source == "sls" and name == "stage":
            return stage
        if source == "opt":
            if name == "stage":
                return stage
            return fallback.strip().strip("'\"")
        if source == "self":
            node: Any = doc
            for part in name.split("."):
                node = node[part]
            return str(node)
        raise ValueError(f"serverless.yml variable ${{{expr}}} is not supported locally")

    def resolve(node: Any) -> Any:
        if isinstance(node, str):
            for _ in range(10):  # variables may nest, e.g. a default that is itself a variable
                replaced = _VARIABLE.sub(lambda m: lookup(m.group(1)), node)
                if replaced == node:
                    break
                node = replaced
            return node
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if isinstance(node, dict):
            return {key: resolve(value) for key, value in node.items()}
        return node

    return resolve(doc)


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    name: str
    attributes: dict[str, str]
    dead_letter: str | None  # logical id of the DLQ
    max_receive_count: int | None


@dataclass(frozen=True)
class StreamSpec:
    """A Kinesis data stream: on demand when shard_count is None."""

    logical_id: str
    name: str
    shard_count: int | None
    retention_hours: int
    key: str | None  # the KMS key it is encrypted with: a key's logical id, or a key id, ARN or alias


@dataclass(frozen=True)
class StreamSourceSpec:
    """One `stream` event (type kinesis) of a function: Lambda's event source mapping for it."""

    stream: str  # logical id
    batch_size: int
    partial_failures: bool  # functionResponseType: ReportBatchItemFailures
    starting_position: str  # TRIM_HORIZON (the only one run locally)
    bisect: bool  # bisectBatchOnFunctionError
    max_retries: int  # maximumRetryAttempts; -1: until the record expires
    on_failure: str | None  # logical id of the on-failure destination (an SQS queue)


@dataclass(frozen=True)
class NotificationSpec:
    queue: str  # logical id
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class BucketSpec:
    logical_id: str
    name: str
    versioned: bool
    object_lock: bool
    notifications: tuple[NotificationSpec, ...]
    cors_rules: tuple[dict, ...] = ()  # in the S3 API's form (PutBucketCors)
    lifecycle_rules: tuple[dict, ...] = ()  # in the S3 API's form (PutBucketLifecycleConfiguration)


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str  # "functions/module.function"
    timeout_s: int
    sqs: tuple[tuple[str, int, bool], ...] = ()  # (queue logical id, batch size, partial batch failures)
    kinesis: tuple[StreamSourceSpec, ...] = ()
    schedules: tuple[str, ...] = ()  # rate(...) expressions
    http: bool = False
    # HTTP API route keys as API Gateway names them: "$default" for '*', else "POST /devices/..."
    routes: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()  # logical ids of its Lambda layers (none are built locally)

    @property
    def module_and_function(self) -> tuple[str, str]:
        path, _, function = self.handler.rpartition(".")
        return path.replace("/", "."), function


@dataclass(frozen=True)
class UserPoolSpec:
    name: str
    client_name: str
    custom_attributes: tuple[str, ...]
    groups: tuple[str, ...]


@dataclass
class Catalog:
    region: str
    stage: str
    service: str = "sunflower"
    resources: dict[str, dict] = field(default_factory=dict)  # logical id -> CloudFormation resource
    tables: dict[str, dict] = field(default_factory=dict)  # logical id -> CreateTable kwargs
    ttl: dict[str, str] = field(default_factory=dict)  # table name -> TTL attribute
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    streams: dict[str, StreamSpec] = field(default_factory=dict)
    buckets: dict[str, BucketSpec] = field(default_factory=dict)
    buses: dict[str, str] = field(default_factory=dict)
    key_aliases: dict[str, str] = field(default_factory=dict)  # alias -> key logical id
    user_pool: UserPoolSpec | None = None
    functions: dict[str, FunctionSpec] = field(default_factory=dict)

    def name_of(self, logical_id: str) -> str:
        if logical_id in self.queues:
            return self.queues[logical_id].name
        if logical_id in self.buckets:
            return self.buckets[logical_id].name
        if logical_id in self.streams:
            return self.streams[logical_id].name
        for table in self.tables.values():
            if table["_logical_id"] == logical_id:
                return table["TableName"]
        raise KeyError(logical_id)

    def function_name(self, spec: FunctionSpec) -> str:
        """The Lambda function's name as Serverless deploys it: {service}-{stage}-{function}."""
        return f"{self.service}-{self.stage}-{spec.name}"

    def queue_arn(self, logical_id: str) -> str:
        return f"arn:aws:sqs:{self.region}:{ACCOUNT_ID}:{self.name_of(logical_id)}"

    def stream_arn(self, logical_id: str) -> str:
        return f"arn:aws:kinesis:{self.region}:{ACCOUNT_ID}:stream/{self.name_of(logical_id)}"


def _ref(value: Any) -> str:
    """The logical id an intrinsic refers to (!Ref X, !GetAtt X.Arn)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    raise ValueError(f"expected !Ref or !GetAtt, got {value!r}")


def _table(logical_id: str, props: dict) -> dict:
    kwargs: dict[str, Any] = {
        "_logical_id": logical_id,
        "TableName": props["TableName"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = [
            {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
            for i in props["GlobalSecondaryIndexes"]
        ]
    if props.get("StreamSpecification"):
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    return kwargs


def _notifications(props: dict) -> tuple[NotificationSpec, ...]:
    specs = []
    for config in (props.get("NotificationConfiguration") or {}).get("QueueConfigurations", []):
        rules = {r["Name"].lower(): r["Value"] for r in config.get("Filter", {}).get("S3Key", {}).get("Rules", [])}
        specs.append(
            NotificationSpec(_ref(config["Queue"]), (config["Event"],), rules.get("prefix", ""), rules.get("suffix", ""))
        )
    return tuple(specs)


def _cors_rules(props: dict) -> tuple[dict, ...]:
    renamed = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds", "Id": "ID"}
    return tuple(
        {renamed.get(key, key): value for key, value in rule.items()}
        for rule in (props.get("CorsConfiguration") or {}).get("CorsRules", [])
    )


_LIFECYCLE_KEYS = {
    "Id", "Status", "Prefix", "ExpirationInDays", "Transitions", "NoncurrentVersionExpiration",
    "AbortIncompleteMultipartUpload",
}  # fmt: skip


def _lifecycle_rules(props: dict) -> tuple[dict, ...]:
    rules = []
    for rule in (props.get("LifecycleConfiguration") or {}).get("Rules", []):
        unknown = sorted(set(rule) - _LIFECYCLE_KEYS)
        if unknown:  # not silently dropped: the local bucket would not be the deployed one
            raise ValueError(f"{props['BucketName']}: lifecycle rule {unknown} has no local counterpart yet")
        api: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
        if "ExpirationInDays" in rule:
            api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if "Transitions" in rule:
            api["Transitions"] = [
                {"Days": int(transition["TransitionInDays"]), "StorageClass": transition["StorageClass"]}
                for transition in rule["Transitions"]
            ]
        if "NoncurrentVersionExpiration" in rule:
            api["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            api["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            }
        rules.append(api)
    return tuple(rules)


def _route_key(event: Any) -> str:
    """The route key of an httpApi event: '*' -> "$default", "post /x" or {method, path} -> "POST /x"."""
    if isinstance(event, dict):
        method, path = str(event.get("method", "*")), str(event["path"])
    elif event.strip() == "*":
        return "$default"
    else:
        method, _, path = event.strip().partition(" ")
    method = method.strip().upper()
    return f"{'ANY' if method == '*' else method} {path.strip()}"


def _stream_source(function: str, source: Any) -> StreamSourceSpec:
    """A `stream` event; as in Serverless v3, batch size 10 and TRIM_HORIZON unless it says otherwise."""
    if not isinstance(source, dict) or source.get("type") != "kinesis":
        raise ValueError(f"function {function}: only `stream` events of type kinesis run locally")
    position = source.get("startingPosition", "TRIM_HORIZON")
    if position != "TRIM_HORIZON":  # LATEST, AT_TIMESTAMP: the pump would have to note where it started
        raise ValueError(f"function {function}: startingPosition {position} has no local counterpart yet")
    on_failure = (source.get("destinations") or {}).get("onFailure")
    if isinstance(on_failure, dict):
        on_failure = on_failure["arn"]
    return StreamSourceSpec(
        stream=_ref(source["arn"]),
        batch_size=int(source.get("batchSize", 10)),
        partial_failures=source.get("functionResponseType") == "ReportBatchItemFailures",
        starting_position=position,
        bisect=bool(source.get("bisectBatchOnFunctionError", False)),
        max_retries=int(source.get("maximumRetryAttempts", -1)),
        on_failure=_ref(on_failure) if on_failure is not None else None,
    )


def _function(name: str, spec: dict, provider: dict) -> FunctionSpec:
    sqs, kinesis, schedules, routes, http = [], [], [], [], False
    for event in spec.get("events", []):
        if "sqs" in event:
            source = event["sqs"]
            if isinstance(source, dict):
                arn, size = source["arn"], int(source.get("batchSize", 10))
                partial = source.get("functionResponseType") == "ReportBatchItemFailures"
            else:
                arn, size, partial = source, 10, False
            sqs.append((_ref(arn), size, partial))
        elif "stream" in event:
            kinesis.append(_stream_source(name, event["stream"]))
        elif "schedule" in event:
            rate = event["schedule"]
            schedules.append(rate["rate"] if isinstance(rate, dict) else rate)
        elif "httpApi" in event:
            http = True
            routes.append(_route_key(event["httpApi"]))
        elif "http" in event:
            http = True
        else:
            raise ValueError(f"function {name}: event {sorted(event)} has no local counterpart yet")
    return FunctionSpec(
        name=name,
        handler=spec["handler"],
        timeout_s=int(spec.get("timeout", provider.get("timeout", 6))),
        sqs=tuple(sqs),
        kinesis=tuple(kinesis),
        schedules=tuple(schedules),
        http=http,
        routes=tuple(routes),
        layers=tuple(_ref(layer) if isinstance(layer, dict) else str(layer) for layer in spec.get("layers", [])),
    )


def load(path: Path = SERVERLESS_YML, *, stage: str = "local", region: str | None = None) -> Catalog:
    raw = yaml.load(path.read_text(), Loader=_CfnLoader)  # a SafeLoader subclass
    raw.setdefault("provider", {})["stage"] = stage
    doc = _resolve_variables(raw, stage)
    provider = doc["provider"]
    catalog = Catalog(region=region or provider.get("region", "ap-east-1"), stage=stage, service=doc["service"])
    resources = (doc.get("resources") or {}).get("Resources") or {}
    catalog.resources = resources
    groups = []
    for logical_id, resource in resources.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::DynamoDB::Table":
            catalog.tables[logical_id] = _table(logical_id, props)
            if (props.get("TimeToLiveSpecification") or {}).get("Enabled"):
                catalog.ttl[props["TableName"]] = props["TimeToLiveSpecification"]["AttributeName"]
        elif kind == "AWS::SQS::Queue":
            redrive = props.get("RedrivePolicy") or {}
            attributes = {
                key: str(props[key])
                for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds")
                if key in props
            }
            catalog.queues[logical_id] = QueueSpec(
                logical_id,
                props["QueueName"],
                attributes,
                _ref(redrive["deadLetterTargetArn"]) if redrive else None,
                int(redrive["maxReceiveCount"]) if redrive else None,
            )
        elif kind == "AWS::Kinesis::Stream":
            mode = (props.get("StreamModeDetails") or {}).get("StreamMode", "PROVISIONED")
            key = (props.get("StreamEncryption") or {}).get("KeyId")
            catalog.streams[logical_id] = StreamSpec(
                logical_id,
                props["Name"],
                None if mode == "ON_DEMAND" else int(props.get("ShardCount", 1)),
                int(props.get("RetentionPeriodHours", 24)),
                key if key is None or isinstance(key, str) else _ref(key),
            )
        elif kind == "AWS::S3::Bucket":
            catalog.buckets[logical_id] = BucketSpec(
                logical_id,
                props["BucketName"],
                (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled",
                bool(props.get("ObjectLockEnabled")),
                _notifications(props),
                _cors_rules(props),
                _lifecycle_rules(props),
            )
        elif kind == "AWS::Events::EventBus":
            catalog.buses[logical_id] = props["Name"]
        elif kind == "AWS::KMS::Alias":
            catalog.key_aliases[props["AliasName"]] = _ref(props["TargetKeyId"])
        elif kind == "AWS::Cognito::UserPool":
            catalog.user_pool = UserPoolSpec(
                props["UserPoolName"], "", tuple(a["Name"] for a in props.get("Schema", [])), ()
            )
        elif kind == "AWS::Cognito::UserPoolClient":
            client_name = props["ClientName"]
        elif kind == "AWS::Cognito::UserPoolGroup":
            groups.append(props["GroupName"])
        elif kind not in NOT_BUILT and kind != "AWS::KMS::Key":
            raise ValueError(f"{logical_id}: resource type {kind} has no local counterpart yet")
    if catalog.user_pool:
        catalog.user_pool = UserPoolSpec(
            catalog.user_pool.name, client_name, catalog.user_pool.custom_attributes, tuple(groups)
        )
    for name, spec in (doc.get("functions") or {}).items():
        catalog.functions[name] = _function(name, spec, provider)
    return catalog
