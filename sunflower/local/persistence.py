"""Keep the dev stack's data across restarts: record the writes moto serves, replay them on start.

moto keeps everything in memory. With moto's recorder on, every request the server handles is
appended to a JSON-lines file; replaying the file against a fresh server writes the same data again.
Only data is recorded (DynamoDB item writes, S3 writes): the resources themselves come from
infra/serverless.yml on every start, and queues, tokens and events are short-lived by nature.

KMS is the exception: moto gives every key random material, so a key rebuilt on start could not
decrypt what the old one encrypted. The keys (id, ARN, material, aliases) are saved to a file of
their own and put back into moto, in this process, before the resources are built.

Start order (`Persistence.restore`): keys -> resources without bucket notifications -> replay ->
bucket notifications -> recording. Notifications come last so that restoring an object does not
process it again.
"""

import base64
import io
import json
import logging
import os
import re
import shutil
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from xml.etree import ElementTree

import requests
from moto.kms.models import kms_backends
from moto.moto_api import recorder

from sunflower.local import stack
from sunflower.local.catalog import ACCOUNT_ID

if TYPE_CHECKING:
    from moto.core.request import Request

    from sunflower.local.cloud import LocalCloud

logger = logging.getLogger(__name__)

RECORDING = "requests.jsonl"
KEYS = "kms-keys.json"

_DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
_S3_WRITES = frozenset({"PUT", "POST", "DELETE"})
# Bucket subresources written from infra/serverless.yml on every start: replaying them would,
# for notifications, make restored objects trigger processing again.
_S3_DERIVED = frozenset({"notification"})
# SigV4: "AWS4-HMAC-SHA256 Credential=AKID/20250101/ap-east-1/dynamodb/aws4_request, ..."
_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")

# moto has one recorder per process, so one Persistence records at a time.
_recording_lock = threading.Lock()
_recording: "Persistence | None" = None


@dataclass(frozen=True)
class ReplayResult:
    requests: int
    failed: int  # answered with an error, as some were when first made (e.g. a failed condition)


class Persistence:
    """The data directory of one dev stack."""

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir)
        self.recording = self.data_dir / RECORDING
        self.keys_file = self.data_dir / KEYS
        self._write_lock = threading.Lock()

    # --- the start of the dev stack ------------------------------------------------------------

    def restore(self, cloud: "LocalCloud") -> ReplayResult:
        """Build the cloud's resources with the saved keys and data, then record what changes."""
        self.stop()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        region = cloud.catalog.region
        self.restore_keys(region)
        cloud.build(notifications=False)
        result = (
            replay(self.recording, cloud.endpoint)
            if self.recording.exists()
            else ReplayResult(0, 0)
        )
        if result.requests:
            logger.info(
                "restored %d recorded write(s) from %s (%d answered with an error, as recorded)",
                result.requests,
                self.recording,
                result.failed,
            )
        stack.connect_notifications(cloud.catalog)
        self.save_keys(region)
        self.start()
        return result

    def reset(self) -> None:
        """Forget everything saved: the next `restore` starts clean."""
        self.stop()
        if self.data_dir.exists():
            for entry in self.data_dir.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()

    # --- recording ----------------------------------------------------------------------------

    def start(self) -> None:
        """Append every data write the moto server of this process handles to the recording."""
        global _recording
        with _recording_lock:
            if _recording is not None and _recording is not self:
                raise RuntimeError(f"moto is already recording into {_recording.data_dir}")
            self.data_dir.mkdir(parents=True, exist_ok=True)
            recorder._location = str(self.recording)
            # The filter sits on the instance, in front of moto's own method.
            recorder._record_request = self._record
            recorder.start_recording()
            _recording = self

    def stop(self) -> None:
        global _recording
        with _recording_lock:
            if _recording is not self:
                return
            recorder.stop_recording()
            recorder.__dict__.pop("_record_request", None)
            _recording = None

    @property
    def recording_active(self) -> bool:
        return _recording is self

    def _record(self, request: "Request", body: bytes | None = None) -> None:
        if not is_data_write(request):
            return
        if body is None and "Content-Length" not in request.headers:
            # Transfer-Encoding: chunked (boto3 over TLS, other SDKs always). moto's recorder only
            # reads bodies of a known length and would record an empty object, so read it here and
            # hand moto the same bytes.
            body = request.environ["wsgi.input"].read()
            request.environ["wsgi.input"] = io.BytesIO(body)
        with self._write_lock:  # requests arrive on many server threads; lines must not interleave
            type(recorder)._record_request(recorder, request, body)

    # --- KMS keys -----------------------------------------------------------------------------

    def save_keys(self, region: str) -> None:
        """Save the account's KMS keys in the region, with their material, in the data directory."""
        backend = kms_backends[ACCOUNT_ID][region]
        keys = [
            {
                "id": key.id,
                "arn": key.arn,
                "description": key.description,
                "key_usage": key.key_usage,
                "key_spec": key.key_spec,
                "material": base64.b64encode(key.key_material).decode("ascii"),
                "aliases": sorted(key.aliases),
            }
            for key in list(backend.keys.values())
            if key.key_spec
            == "SYMMETRIC_DEFAULT"  # asymmetric keys have private keys this does not keep
        ]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        partial = self.keys_file.with_suffix(".tmp")
        # Key material: readable by its owner only, even on a laptop.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump({"version": 1, "region": region, "keys": keys}, file, indent=2)
        os.replace(partial, self.keys_file)

    def restore_keys(self, region: str) -> int:
        """Put the saved keys back into moto's KMS (in this process), aliases included; how many."""
        if not self.keys_file.exists():
            return 0
        saved = json.loads(self.keys_file.read_text())
        backend = kms_backends[ACCOUNT_ID][region]
        for entry in saved["keys"]:
            key = backend.keys.get(entry["id"])
            if key is None:
                key = backend.create_key(
                    None, entry["key_usage"], entry["key_spec"], entry["description"], None
                )
                del backend.keys[key.id]
                key.id, key.arn = entry["id"], entry["arn"]
                backend.keys[key.id] = key
            key.key_material = base64.b64decode(entry["material"])
            for alias in entry["aliases"]:
                backend.delete_alias(alias)  # it may name a key built before the restore
                backend.create_alias(key.id, alias)
        return len(saved["keys"])


def is_data_write(request: "Request") -> bool:
    """Whether a request to moto writes data worth keeping: DynamoDB item writes and S3 writes."""
    service = _service(request)
    if service == "dynamodb":
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        return operation in _DYNAMODB_WRITES
    if service == "s3":
        query = {
            name for name, _ in parse_qsl(urlsplit(request.raw_url).query, keep_blank_values=True)
        }
        return request.method in _S3_WRITES and not (query & _S3_DERIVED)
    return False


def _service(request: "Request") -> str | None:
    """The service a SigV4 request is signed for, from its credential scope."""
    match = _CREDENTIAL.search(request.headers.get("Authorization", ""))
    if match:
        return match[1]
    for name, value in parse_qsl(urlsplit(request.raw_url).query):  # a presigned URL
        if name == "X-Amz-Credential":
            parts = value.split("/")
            return parts[3] if len(parts) == 5 else None
    return None


def replay(path: Path, endpoint: str) -> ReplayResult:
    """Send the recorded requests to `endpoint`, in order.

    Like moto's `recorder.replay_recording(target_host=...)`, plus one thing it cannot do: S3
    multipart uploads (boto3 uses them above 8 MB) get a new random upload id from the new
    server, so the parts and the completion are sent to that id instead of the recorded one.
    """
    target = urlsplit(endpoint)
    session = requests.Session()
    upload_ids: dict[str, str] = {}  # recorded -> replayed
    created: dict[str, deque[str]] = defaultdict(
        deque
    )  # object path -> replayed upload ids not yet matched
    sent = failed = 0
    with path.open() as lines:
        for line in lines:
            if not line.strip():
                continue
            entry: dict[str, Any] = json.loads(line)
            url = urlsplit(entry["url"])
            params = parse_qsl(url.query, keep_blank_values=True)
            query = url.query
            recorded_upload = dict(params).get("uploadId")
            if recorded_upload:
                if recorded_upload not in upload_ids and created[url.path]:
                    upload_ids[recorded_upload] = created[url.path].popleft()
                if recorded_upload in upload_ids:
                    params = [
                        (k, upload_ids[recorded_upload] if k == "uploadId" else v)
                        for k, v in params
                    ]
                    query = urlencode(params, quote_via=quote)
            headers = dict(entry.get("headers") or {})
            # The body is sent whole, with its length: the recorded transfer framing is gone.
            for name in [
                h for h in headers if h.lower() in ("transfer-encoding", "content-length")
            ]:
                del headers[name]
            if headers.get("Host") == url.netloc:
                headers["Host"] = target.netloc
            body = entry.get("body") or ""
            data = base64.b64decode(body) if entry.get("body_encoded") else body.encode("utf-8")
            response = session.request(
                entry["method"],
                f"{target.scheme}://{target.netloc}{url.path}" + (f"?{query}" if query else ""),
                headers=headers,
                data=data,
                timeout=30,
            )
            sent += 1
            if response.status_code >= 400:
                failed += 1
                logger.debug(
                    "replayed %s %s: HTTP %d", entry["method"], url.path, response.status_code
                )
            elif entry["method"] == "POST" and any(k == "uploads" for k, _ in params):
                created[url.path].append(_upload_id(response.content))
    return ReplayResult(sent, failed)


def _upload_id(xml: bytes) -> str:
    root = ElementTree.fromstring(xml)
    for element in root.iter():
        if element.tag.rpartition("}")[2] == "UploadId":
            return element.text or ""
    raise ValueError("CreateMultipartUpload answered without an UploadId")
