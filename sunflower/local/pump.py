"""Hand SQS messages and Kinesis records to the functions subscribed to them, as Lambda does.

moto keeps queues and streams but cannot run functions. The pump is the local event source mapping.

SQS: it long-polls each queue a function consumes, hands the batch to the handler in the shape
Lambda gives it, and deletes what the handler processed. Everything else is left to moto, as in the
cloud: a message that is not deleted becomes visible again after the queue's visibility timeout,
and moto moves it to the dead-letter queue once its receive count passes maxReceiveCount.

Kinesis: the pump keeps each shard's checkpoint itself, as Lambda does, and reads on from it. A
batch that fails in part moves the checkpoint to just before its lowest failed sequence number and
the rest is read again; a batch that fails at its first record is halved (bisectBatchOnFunctionError,
which costs no retry) until that record is alone, then retried maximumRetryAttempts times, then
discarded: its metadata (shard, sequence range; not the data) goes to the on-failure destination and
the shard moves on. Resharding is not modelled (every shard is read as if it had no parent).
"""

import base64
import importlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from sunflower.aws.clients import client
from sunflower.local.catalog import ACCOUNT_ID, Catalog, FunctionSpec, StreamSourceSpec
from sunflower.local.lambda_context import LambdaContext

logger = logging.getLogger(__name__)

Handler = Callable[[dict, Any], Any]
Resolve = Callable[[FunctionSpec], Handler]

_RECEIVE_MAX = 10  # SQS returns at most 10 messages per ReceiveMessage
_DELETE_MAX = 10  # and deletes at most 10 per DeleteMessageBatch
_DRAIN_PAUSE_S = 0.05  # between checks while messages wait out their visibility timeout


def import_handler(spec: FunctionSpec) -> Handler:
    """The handler function that FunctionSpec.handler names ("functions/module.function")."""
    module_name, function_name = spec.module_and_function
    handler = getattr(importlib.import_module(module_name), function_name, None)
    if not callable(handler):
        raise ImportError(f"function {spec.name}: {module_name} has no handler {function_name!r}")
    return handler


@dataclass(frozen=True)
class SqsSource:
    """One `sqs` event of one function: Lambda's event source mapping."""

    function: FunctionSpec
    queue: str  # logical id
    batch_size: int
    partial_failures: bool  # functionResponseType: ReportBatchItemFailures

    @property
    def resource(self) -> str:
        return self.queue


@dataclass(frozen=True)
class KinesisSource:
    """One `stream` event (type kinesis) of one function: Lambda's event source mapping."""

    function: FunctionSpec
    spec: StreamSourceSpec

    @property
    def resource(self) -> str:
        return self.spec.stream

    @property
    def partial_failures(self) -> bool:
        return self.spec.partial_failures


Source = SqsSource | KinesisSource


@dataclass
class _ShardPosition:
    """Where a Kinesis source is in one shard."""

    limit: int  # the next batch's size: the batch size, less while a failed batch is halved
    checkpoint: str | None = None  # the last record done with (processed or discarded)
    retries: int = 0  # failed invocations in a row that made no progress and were not split

    def advance(self, checkpoint: str, batch_size: int) -> None:
        self.checkpoint, self.retries, self.limit = checkpoint, 0, batch_size


class EventPump:
    """Deliver queues and streams to their functions, in threads (`start`) or tests (`drain`)."""

    def __init__(
        self,
        catalog: Catalog,
        resolve: Resolve = import_handler,
        *,
        wait_time_s: int = 1,
    ) -> None:
        self.catalog = catalog
        self.sources: list[Source] = [
            SqsSource(spec, queue, batch_size, partial)
            for spec in catalog.functions.values()
            for queue, batch_size, partial in spec.sqs
        ]
        self.sources += [
            KinesisSource(spec, stream)
            for spec in catalog.functions.values()
            for stream in spec.kinesis
        ]
        self._resolve = resolve
        self._wait_time_s = wait_time_s
        self._handlers: dict[str, Handler] = {}
        self._queue_urls: dict[str, str] = {}
        # (function name, stream logical id, shard id) -> position
        self._shards: dict[tuple[str, str, str], _ShardPosition] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- running ------------------------------------------------------------------------------

    def start(self) -> None:
        """A polling thread per event source; a handler that cannot be imported fails here."""
        if self._threads:
            return
        for source in self.sources:
            self._handler(source.function)
        self._stopping.clear()
        for source in self.sources:
            thread = threading.Thread(
                target=self._run,
                args=(source,),
                name=f"pump-{source.function.name}-{source.resource}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop polling; a batch being handled is finished first (within `timeout_s`)."""
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0))
            if thread.is_alive():
                logger.warning("event pump thread %s is still handling a batch", thread.name)
        self._threads = []

    def __enter__(self) -> "EventPump":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, source: Source) -> None:
        while not self._stopping.is_set():
            try:
                delivered = self.poll(source, wait_time_s=self._wait_time_s)
            except Exception:
                # The queue may be gone for a moment (moto reset, stack rebuilt): keep polling.
                logger.exception(
                    "event pump: polling %s for %s failed", source.resource, source.function.name
                )
                self._queue_urls.pop(source.resource, None)
                self._stopping.wait(1)
                continue
            if isinstance(source, KinesisSource) and not delivered:
                # No long poll on a stream: Lambda reads an idle shard about once a second.
                self._stopping.wait(self._wait_time_s)

    # --- one step, for tests and the threads ---------------------------------------------------

    def poll(self, source: Source, *, wait_time_s: int = 0) -> int:
        """Hand the function up to one batch from the queue (from each of the stream's shards).

        Returns the records delivered.
        """
        handler = self._handler(source.function)
        if isinstance(source, KinesisSource):
            return sum(
                self._poll_shard(source, handler, shard_id) for shard_id in self._shard_ids(source)
            )
        messages = self._receive(source, wait_time_s)
        if not messages:
            return 0
        self._invoke(source, handler, messages)
        return len(messages)

    def poll_all(self, *, wait_time_s: int = 0) -> int:
        return sum(self.poll(source, wait_time_s=wait_time_s) for source in self.sources)

    def drain(self, timeout_s: float = 10.0) -> None:
        """Pump until every consumed queue is empty, nothing is in flight and every stream is read.

        Messages that fail wait out their visibility timeout and are delivered again until they
        succeed or moto moves them to the dead-letter queue; stream records are retried at once
        until they succeed or are discarded; so a drain ends either way (unless a stream retries
        without limit, maximumRetryAttempts -1). Raises TimeoutError naming what is left.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            delivered = self.poll_all(wait_time_s=0)
            if not delivered and not any(self.pending().values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"not drained after {timeout_s} s; messages or records left: {self.pending()}"
                )
            if not delivered:
                time.sleep(_DRAIN_PAUSE_S)

    def pending(self) -> dict[str, int]:
        """Messages visible, in flight or delayed, per consumed queue, and records after the
        checkpoints, per consumed stream (by queue or stream name)."""
        counts: dict[str, int] = {}
        for source in self.sources:
            if isinstance(source, KinesisSource):
                name = self.catalog.name_of(source.spec.stream)
                waiting = sum(
                    len(self._read(source, shard_id, None)) for shard_id in self._shard_ids(source)
                )
                counts[name] = counts.get(name, 0) + waiting
        for queue in {source.queue for source in self.sources if isinstance(source, SqsSource)}:
            attributes = client("sqs").get_queue_attributes(
                QueueUrl=self._queue_url(queue),
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            counts[self.catalog.name_of(queue)] = sum(int(v) for v in attributes.values())
        return counts

    # --- Lambda's behaviour ------------------------------------------------------------------

    def _handler(self, spec: FunctionSpec) -> Handler:
        # Resolved once, like a warm container: module-level clients and services are built once.
        with self._lock:
            if spec.name not in self._handlers:
                self._handlers[spec.name] = self._resolve(spec)
            return self._handlers[spec.name]

    def _queue_url(self, queue: str) -> str:
        url = self._queue_urls.get(queue)
        if url is None:
            url = client("sqs").get_queue_url(QueueName=self.catalog.name_of(queue))["QueueUrl"]
            self._queue_urls[queue] = url
        return url

    def _receive(self, source: SqsSource, wait_time_s: int) -> list[dict]:
        """Up to batch size messages: a long poll for the first, then whatever else is waiting."""
        messages: list[dict] = []
        wait = wait_time_s
        while len(messages) < source.batch_size:
            try:
                received = (
                    client("sqs")
                    .receive_message(
                        QueueUrl=self._queue_url(source.queue),
                        MaxNumberOfMessages=min(_RECEIVE_MAX, source.batch_size - len(messages)),
                        WaitTimeSeconds=wait,
                        MessageSystemAttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    )
                    .get("Messages", [])
                )
            except ClientError:
                self._queue_urls.pop(source.queue, None)
                raise
            if not received:
                break
            messages.extend(received)
            wait = 0
        return messages

    def _call(
        self, source: Source, handler: Handler, event: dict, ids: list[str], origin: str
    ) -> tuple[set[str] | None, LambdaContext]:
        """Invoke the function as Lambda does: the ids it failed, None if the whole batch failed."""
        spec = source.function
        name = self.catalog.function_name(spec)
        context = LambdaContext.for_invocation(
            name, region=self.catalog.region, timeout_s=spec.timeout_s
        )
        started = time.monotonic()
        try:
            response = handler(event, context)
        except Exception:
            # As in Lambda: an error fails the whole batch. Ids only: bodies may hold personal data.
            logger.exception(
                "function %s failed on a batch of %d record(s) from %s: %s",
                name,
                len(ids),
                origin,
                ", ".join(ids),
            )
            return None, context
        elapsed = time.monotonic() - started
        if elapsed > spec.timeout_s:
            logger.error(
                "function %s ran %.1f s, over its %d s timeout: Lambda would have stopped it, "
                "so the batch of %d record(s) from %s failed",
                name,
                elapsed,
                spec.timeout_s,
                len(ids),
                origin,
            )
            return None, context
        failed = batch_item_failures(response, ids) if source.partial_failures else set()
        if failed is None:
            logger.error(
                "function %s returned an invalid batchItemFailures response: the whole batch of %d "
                "record(s) from %s failed",
                name,
                len(ids),
                origin,
            )
        elif failed:
            logger.warning(
                "function %s failed %d of %d record(s) from %s: %s",
                name,
                len(failed),
                len(ids),
                origin,
                ", ".join(sorted(failed)),
            )
        return failed, context

    def _invoke(self, source: SqsSource, handler: Handler, messages: list[dict]) -> None:
        event = sqs_event(messages, self.catalog.queue_arn(source.queue), self.catalog.region)
        ids = [m["MessageId"] for m in messages]
        failed, _ = self._call(source, handler, event, ids, self.catalog.name_of(source.queue))
        if failed is None:
            return  # every message comes back after the visibility timeout
        self._delete(source, [m for m in messages if m["MessageId"] not in failed])

    def _delete(self, source: SqsSource, messages: list[dict]) -> None:
        for chunk in _chunks(messages, _DELETE_MAX):
            response = client("sqs").delete_message_batch(
                QueueUrl=self._queue_url(source.queue),
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                logger.error(
                    "could not delete message %s from %s: %s",
                    chunk[int(failure["Id"])]["MessageId"],
                    self.catalog.name_of(source.queue),
                    failure.get("Code"),
                )

    # --- Kinesis -----------------------------------------------------------------------------------

    def _shard_ids(self, source: KinesisSource) -> list[str]:
        shards = client("kinesis").list_shards(StreamName=self.catalog.name_of(source.spec.stream))
        return sorted(shard["ShardId"] for shard in shards["Shards"])

    def _position(self, source: KinesisSource, shard_id: str) -> _ShardPosition:
        key = (source.function.name, source.spec.stream, shard_id)
        return self._shards.setdefault(key, _ShardPosition(limit=source.spec.batch_size))

    def _read(self, source: KinesisSource, shard_id: str, limit: int | None) -> list[dict]:
        """Up to `limit` records after the shard's checkpoint (before one, from TRIM_HORIZON)."""
        kinesis = client("kinesis")
        checkpoint = self._position(source, shard_id).checkpoint
        where: dict[str, str] = {"ShardIteratorType": "TRIM_HORIZON"}
        if checkpoint is not None:
            where = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": checkpoint,
            }
        iterator = kinesis.get_shard_iterator(
            StreamName=self.catalog.name_of(source.spec.stream), ShardId=shard_id, **where
        )["ShardIterator"]
        records: list[dict] = []
        while iterator and (limit is None or len(records) < limit):
            response = kinesis.get_records(
                ShardIterator=iterator, Limit=10_000 if limit is None else limit - len(records)
            )
            if not response["Records"]:
                break
            records += response["Records"]
            iterator = response.get("NextShardIterator")
        return records

    def _poll_shard(self, source: KinesisSource, handler: Handler, shard_id: str) -> int:
        """Hand the shard's next batch to the function and move the checkpoint as Lambda does."""
        position = self._position(source, shard_id)
        records = self._read(source, shard_id, position.limit)
        if not records:
            return 0
        stream_arn = self.catalog.stream_arn(source.spec.stream)
        role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{self.catalog.function_name(source.function)}"
        event = kinesis_event(records, shard_id, stream_arn, self.catalog.region, role_arn)
        numbers = [r["SequenceNumber"] for r in records]
        origin = f"{shard_id} of {self.catalog.name_of(source.spec.stream)}"
        failed, context = self._call(source, handler, event, numbers, origin)
        # Records before the lowest failure are done with: the checkpoint passes them.
        if failed is None:
            done = 0
        else:
            done = min((numbers.index(n) for n in failed), default=len(records))
        if done:
            position.advance(numbers[done - 1], source.spec.batch_size)
        elif source.spec.bisect and len(records) > 1:
            position.limit = (len(records) + 1) // 2  # a split is not a retry
        else:
            position.retries += 1
            if 0 <= source.spec.max_retries < position.retries:
                self._discard(source, shard_id, records, position.retries, context, failed is None)
                position.advance(numbers[-1], source.spec.batch_size)
        return len(records)

    def _discard(
        self,
        source: KinesisSource,
        shard_id: str,
        records: list[dict],
        invocations: int,
        context: LambdaContext,
        function_error: bool,
    ) -> None:
        """Skip records whose retries are spent; their metadata goes to the on-failure destination."""
        first, last = records[0], records[-1]
        logger.error(
            "function %s: retries spent on records %s..%s of %s of %s; discarded%s",
            source.function.name,
            first["SequenceNumber"],
            last["SequenceNumber"],
            shard_id,
            self.catalog.name_of(source.spec.stream),
            "" if source.spec.on_failure else " (no on-failure destination)",
        )
        if not source.spec.on_failure:
            return
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error:
            response["functionError"] = "Unhandled"
        record = {
            "requestContext": {
                "requestId": context.aws_request_id,
                "functionArn": context.invoked_function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": invocations,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": _iso(datetime.now(UTC)),
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first["ApproximateArrivalTimestamp"]),
                "approximateArrivalOfLastRecord": _iso(last["ApproximateArrivalTimestamp"]),
                "batchSize": len(records),
                "streamArn": self.catalog.stream_arn(source.spec.stream),
            },
        }
        client("sqs").send_message(
            QueueUrl=self._queue_url(source.spec.on_failure), MessageBody=json.dumps(record)
        )


def kinesis_event(
    records: Sequence[Mapping[str, Any]], shard_id: str, stream_arn: str, region: str, role_arn: str
) -> dict:
    """The event Lambda's Kinesis event source mapping passes to a function (GetRecords' records)."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode("ascii"),
                    "approximateArrivalTimestamp": round(
                        r["ApproximateArrivalTimestamp"].timestamp(), 3
                    ),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{r['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": role_arn,
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
            for r in records
        ]
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict:
    """The event Lambda's SQS event source mapping passes to a function."""
    return {"Records": [sqs_record(m, queue_arn, region) for m in messages]}


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict:
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update(eventSource="aws:sqs", eventSourceARN=queue_arn, awsRegion=region)
    return record


def _message_attribute(value: Mapping[str, Any]) -> dict:
    """ReceiveMessage's {StringValue, BinaryValue, DataType} in Lambda's lower-camel form."""
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    attribute["stringListValues"] = list(value.get("StringListValues", []))
    attribute["binaryListValues"] = [
        base64.b64encode(v).decode("ascii") for v in value.get("BinaryListValues", [])
    ]
    attribute["dataType"] = value["DataType"]
    return attribute


def batch_item_failures(response: Any, message_ids: Sequence[str]) -> set[str] | None:
    """The message ids (sequence numbers, from a stream) a ReportBatchItemFailures response names;
    None if Lambda would reject it.

    Lambda counts a missing or empty response or list as full success, and an item without a
    valid identifier of this batch as a failure of the whole batch.
    """
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return None
    items = response.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        return None
    failed = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not identifier or identifier not in message_ids:
            return None
        failed.add(identifier)
    return failed


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
