"""Feed SQS messages to the functions infra/serverless.yml subscribes to them, as Lambda does.

moto keeps queues but cannot run functions. The pump is the local event source mapping: it
long-polls each queue a function consumes, hands the batch to the handler in the shape Lambda
gives it, and deletes what the handler processed. Everything else is left to moto, as in the
cloud: a message that is not deleted becomes visible again after the queue's visibility timeout,
and moto moves it to the dead-letter queue once its receive count passes maxReceiveCount.
"""

import base64
import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from sunflower.aws.clients import client
from sunflower.local.catalog import Catalog, FunctionSpec
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


class EventPump:
    """Deliver the catalog's queues to their functions, in threads (`start`) or tests (`drain`)."""

    def __init__(
        self,
        catalog: Catalog,
        resolve: Resolve = import_handler,
        *,
        wait_time_s: int = 1,
    ) -> None:
        self.catalog = catalog
        self.sources = [
            SqsSource(spec, queue, batch_size, partial)
            for spec in catalog.functions.values()
            for queue, batch_size, partial in spec.sqs
        ]
        self._resolve = resolve
        self._wait_time_s = wait_time_s
        self._handlers: dict[str, Handler] = {}
        self._queue_urls: dict[str, str] = {}
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
                name=f"pump-{source.function.name}-{source.queue}",
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

    def _run(self, source: SqsSource) -> None:
        while not self._stopping.is_set():
            try:
                self.poll(source, wait_time_s=self._wait_time_s)
            except Exception:
                # The queue may be gone for a moment (moto reset, stack rebuilt): keep polling.
                logger.exception(
                    "event pump: polling %s for %s failed", source.queue, source.function.name
                )
                self._queue_urls.pop(source.queue, None)
                self._stopping.wait(1)

    # --- one step, for tests and the threads ---------------------------------------------------

    def poll(self, source: SqsSource, *, wait_time_s: int = 0) -> int:
        """Receive up to one batch from the queue, invoke the function; the records delivered."""
        handler = self._handler(source.function)
        messages = self._receive(source, wait_time_s)
        if not messages:
            return 0
        self._invoke(source, handler, messages)
        return len(messages)

    def poll_all(self, *, wait_time_s: int = 0) -> int:
        return sum(self.poll(source, wait_time_s=wait_time_s) for source in self.sources)

    def drain(self, timeout_s: float = 10.0) -> None:
        """Pump until every consumed queue is empty and nothing is in flight.

        Messages that fail wait out their visibility timeout and are delivered again until they
        succeed or moto moves them to the dead-letter queue, so a drain ends either way.
        Raises TimeoutError naming what is left.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            delivered = self.poll_all(wait_time_s=0)
            if not delivered and not any(self.pending().values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"queues not drained after {timeout_s} s; messages left: {self.pending()}"
                )
            if not delivered:
                time.sleep(_DRAIN_PAUSE_S)

    def pending(self) -> dict[str, int]:
        """Messages visible, in flight or delayed, per consumed queue (by queue name)."""
        counts = {}
        for queue in {source.queue for source in self.sources}:
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

    def _invoke(self, source: SqsSource, handler: Handler, messages: list[dict]) -> None:
        spec = source.function
        name = self.catalog.function_name(spec)
        queue_name = self.catalog.name_of(source.queue)
        event = sqs_event(messages, self.catalog.queue_arn(source.queue), self.catalog.region)
        context = LambdaContext.for_invocation(
            name, region=self.catalog.region, timeout_s=spec.timeout_s
        )
        ids = [m["MessageId"] for m in messages]
        started = time.monotonic()
        try:
            response = handler(event, context)
        except Exception:
            # As in Lambda: an error fails the whole batch; every message comes back after the
            # visibility timeout. Message ids only: bodies may hold personal data.
            logger.exception(
                "function %s failed on a batch of %d message(s) from %s; all will be retried: %s",
                name,
                len(ids),
                queue_name,
                ", ".join(ids),
            )
            return
        elapsed = time.monotonic() - started
        if elapsed > spec.timeout_s:
            logger.error(
                "function %s ran %.1f s, over its %d s timeout: Lambda would have stopped it, "
                "so the batch of %d message(s) from %s will be retried",
                name,
                elapsed,
                spec.timeout_s,
                len(ids),
                queue_name,
            )
            return
        failed = batch_item_failures(response, ids) if source.partial_failures else set()
        if failed is None:
            logger.error(
                "function %s returned an invalid batchItemFailures response; the whole batch of %d "
                "message(s) from %s will be retried",
                name,
                len(ids),
                queue_name,
            )
            return
        if failed:
            logger.warning(
                "function %s failed %d of %d message(s) from %s; they will be retried: %s",
                name,
                len(failed),
                len(ids),
                queue_name,
                ", ".join(sorted(failed)),
            )
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
    """The message ids a ReportBatchItemFailures response names; None if Lambda would reject it.

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
