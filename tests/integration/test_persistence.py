"""The dev stack's data survives a restart: recorded writes are replayed, KMS keys are put back.

A restart is simulated by POST {endpoint}/moto-api/reset: moto's backends are process-global, so
a second server in this process would share, not lose, the first one's state.
"""

import dataclasses
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import botocore.httpchecksum
import pytest
import requests
from boto3.s3.transfer import TransferConfig

from sunflower.auth import device_signature
from sunflower.auth.principals import Principal, Role
from sunflower.aws import kms, storage
from sunflower.aws.clients import client
from sunflower.common.errors import NotFound
from sunflower.container import services
from sunflower.devices.models import DeviceKind
from sunflower.local import catalog as catalog_module
from sunflower.local.persistence import RECORDING, Persistence, is_data_write

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pump" / "serverless.yml"
ADMIN = Principal(id="admin-1", roles=frozenset({Role.ADMIN}))


@pytest.fixture
def cloud(local_cloud):
    """The main stack plus the pump fixture's bucket, which notifies a queue of new objects."""
    main, extra = local_cloud.catalog, catalog_module.load(FIXTURE, stage="local")
    combined = dataclasses.replace(
        main, queues={**main.queues, **extra.queues}, buckets={**main.buckets, **extra.buckets}
    )
    return dataclasses.replace(local_cloud, catalog=combined)


@pytest.fixture
def data_dir(tmp_path) -> Iterator[Path]:
    yield tmp_path / "data"


@pytest.fixture
def persistences() -> Iterator[list[Persistence]]:
    """Every Persistence a test makes stops recording at its end, so other tests are unaffected."""
    made: list[Persistence] = []
    yield made
    for persistence in made:
        persistence.stop()


def _start(cloud, data_dir: Path, persistences: list[Persistence]) -> Persistence:
    persistence = Persistence(data_dir)
    persistences.append(persistence)
    persistence.restore(cloud)
    return persistence


def _restart(cloud, persistence: Persistence) -> None:
    """What stopping the dev stack does to moto: everything in memory is gone."""
    persistence.stop()
    requests.post(f"{cloud.endpoint}/moto-api/reset", timeout=10).raise_for_status()
    services.cache_clear()  # warm services remember decrypted secrets


def _object_created_keys(cloud) -> list[str]:
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=cloud.catalog.name_of("UploadsQueue"))["QueueUrl"]
    keys = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            for record in json.loads(message["Body"]).get(
                "Records", []
            ):  # S3's test event has none
                keys.append(record["s3"]["object"]["key"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return keys


def _put_as_over_tls(**kwargs) -> None:
    """PutObject as boto3 sends it over TLS: aws-chunked, checksum in a trailer, Transfer-Encoding: chunked.

    Over plain HTTP, boto3 sends a Content-Length and the checksum in a header instead, but other SDKs
    and TLS proxies use the chunked form; it must replay as the same bytes.
    """
    real = botocore.httpchecksum.urlparse

    def as_https(url):
        return real(url)._replace(scheme="https")

    with mock.patch.object(botocore.httpchecksum, "urlparse", as_https):
        client("s3").put_object(**kwargs)


def test_given_state_written_through_the_adapters_when_the_stack_restarts_then_it_is_all_back(
    cloud, data_dir, persistences
):
    # given a first start, then a device (DynamoDB item, KMS-sealed secret), objects and a secret
    persistence = _start(cloud, data_dir, persistences)
    issued = services().devices.register(
        ADMIN, kind=DeviceKind.GATE, name="North gate", site_id="community-7"
    )
    audit_body = os.urandom(2048)
    storage.put("audit", "batches/0001.json", audit_body)
    uploads = cloud.catalog.name_of("UploadsBucket")
    chunked_body = os.urandom(70_000)
    _put_as_over_tls(Bucket=uploads, Key="incoming/chunked.bin", Body=chunked_body)
    large_body = os.urandom(11 * 1024 * 1024)  # three parts of a multipart upload
    client("s3").upload_fileobj(
        io.BytesIO(large_body),
        uploads,
        "incoming/large.bin",
        Config=TransferConfig(
            multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
        ),
    )
    secret = kms.encrypt(b"cursor-hmac-key", {"purpose": "cursors"})
    # and the uploads were announced (moto announces a multipart upload twice, as Put and as
    # CompleteMultipartUpload, where S3 sends only the latter)
    assert set(_object_created_keys(cloud)) == {"incoming%2Fchunked.bin", "incoming%2Flarge.bin"}

    # when the stack restarts and restores its state
    _restart(cloud, persistence)
    _start(cloud, data_dir, persistences)

    # then the device is back, and its KMS-sealed secret still authenticates its requests
    assert (
        services().devices.get_many(ADMIN, [issued.device.id])[issued.device.id].name
        == "North gate"
    )
    body = b'{"firmware": "1.2.0"}'
    headers = device_signature.signed_headers(
        issued.device.id, issued.secret, "POST", "/devices/heartbeat", body, datetime.now(UTC)
    )
    assert (
        services().devices.authenticate("POST", "/devices/heartbeat", headers, body).id
        == issued.device.id
    )
    # and the objects are byte-identical
    assert storage.get("audit", "batches/0001.json") == audit_body
    s3 = client("s3")
    assert s3.get_object(Bucket=uploads, Key="incoming/chunked.bin")["Body"].read() == chunked_body
    assert s3.get_object(Bucket=uploads, Key="incoming/large.bin")["Body"].read() == large_body
    # and the secret decrypts under the restored data key
    assert kms.decrypt(secret, {"purpose": "cursors"}) == b"cursor-hmac-key"
    # and restoring the objects did not announce them again
    assert _object_created_keys(cloud) == []
    # while new uploads still are
    s3.put_object(Bucket=uploads, Key="incoming/after.bin", Body=b"new")
    assert _object_created_keys(cloud) == ["incoming%2Fafter.bin"]


def test_given_a_recording_when_reads_and_other_services_are_used_then_only_data_writes_are_in_it(
    cloud, data_dir, persistences
):
    # given
    persistence = _start(cloud, data_dir, persistences)

    # when the stack writes and reads through every kind of service
    storage.put("audit", "batches/0002.json", b"{}")
    storage.get("audit", "batches/0002.json")
    issued = services().devices.register(
        ADMIN, kind=DeviceKind.CAMERA, name="Cam 1", site_id="corridor-3"
    )
    services().devices.get_many(ADMIN, [issued.device.id])
    kms.decrypt(kms.encrypt(b"x", {"k": "v"}), {"k": "v"})
    client("sqs").list_queues()
    client("events").list_event_buses()
    persistence.stop()

    # then the recording holds DynamoDB item writes and S3 writes, and nothing else
    entries = [json.loads(line) for line in (data_dir / RECORDING).read_text().splitlines()]
    targets = {e["headers"].get("X-Amz-Target", "").rpartition(".")[2] for e in entries} - {""}
    s3_calls = {
        (e["method"], urlsplit(e["url"]).path)
        for e in entries
        if "X-Amz-Target" not in e["headers"]
    }
    assert targets  # the device and its audit entry
    assert targets <= {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
    }
    assert s3_calls == {("PUT", f"/{storage.bucket('audit')}/batches/0002.json")}


def test_given_saved_state_when_reset_then_the_next_start_is_clean(cloud, data_dir, persistences):
    # given saved state
    persistence = _start(cloud, data_dir, persistences)
    storage.put("audit", "batches/0003.json", b"{}")

    # when the data directory is reset and the stack restarts
    persistence.reset()
    assert not persistence.recording_active
    assert list(data_dir.iterdir()) == []
    _restart(cloud, persistence)
    restarted = _start(cloud, data_dir, persistences)

    # then nothing comes back, and the new stack records again
    with pytest.raises(NotFound):
        storage.get("audit", "batches/0003.json")
    assert restarted.recording_active
    assert (data_dir / "kms-keys.json").exists()


def test_recording_filter_tells_services_from_the_credential_scope():
    # given requests as moto sees them
    def request(method, url, headers):
        return mock.Mock(method=method, raw_url=url, headers=headers)

    def auth(service):
        return {
            "Authorization": f"AWS4-HMAC-SHA256 Credential=local/20250301/ap-east-1/{service}/aws4_request, X"
        }

    # then
    assert is_data_write(
        request(
            "POST",
            "http://h/",
            {**auth("dynamodb"), "X-Amz-Target": "DynamoDB_20120810.UpdateItem"},
        )
    )
    assert not is_data_write(
        request(
            "POST", "http://h/", {**auth("dynamodb"), "X-Amz-Target": "DynamoDB_20120810.Query"}
        )
    )
    assert is_data_write(request("DELETE", "http://h/b/k", auth("s3")))
    assert is_data_write(request("POST", "http://h/b?delete", auth("s3")))
    assert not is_data_write(request("GET", "http://h/b/k", auth("s3")))
    assert not is_data_write(request("PUT", "http://h/b?notification", auth("s3")))
    assert not is_data_write(
        request("POST", "http://h/", {**auth("kms"), "X-Amz-Target": "TrentService.Encrypt"})
    )
    assert not is_data_write(request("POST", "http://h/", auth("sqs")))
    assert is_data_write(
        request(
            "PUT",
            "http://h/b/k?X-Amz-Credential=AKID%2F20250301%2Fap-east-1%2Fs3%2Faws4_request",
            {},
        )
    )
