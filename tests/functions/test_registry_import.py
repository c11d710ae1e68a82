"""functions/registry_import.py fed real-shaped SQS events wrapping S3 notifications (tests/events/)."""

import copy
import json

import boto3
import pytest
from factories import audit_log, person_row

from sunflower.common.settings import get_settings
from sunflower.container import services
from sunflower.registries.imports import ImportStatus

KEY = "incoming/person/平房区民政局/2025 人口.csv"  # what tests/events/sqs_s3_put_import.json announces, URL-encoded


def people_csv(*rows: dict) -> bytes:
    lines = ["姓名,身份证号,联系电话"] + [f"{r['name']},{r['id_number']},{r['phone']}" for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")


@pytest.fixture
def uploaded_event(local_cloud, events):
    """The event file, pointing at an object really uploaded under its key (ETag, size and version as S3 gave them)."""

    def make(body: bytes) -> dict:
        s3 = boto3.client("s3")
        put = s3.put_object(Bucket=get_settings().bucket("imports"), Key=KEY, Body=body)
        event = events("sqs_s3_put_import.json")
        notification = json.loads(event["Records"][0]["body"])
        obj = notification["Records"][0]["s3"]["object"]
        obj.update(eTag=put["ETag"].strip('"'), size=len(body), versionId=put["VersionId"])
        event["Records"][0]["body"] = json.dumps(notification)
        return event

    return make


def test_an_upload_event_imports_the_file_and_reports_no_failures(uploaded_event, lambda_context):
    from functions import registry_import

    # given
    rows = [person_row(), person_row(phone="not a phone")]
    event = uploaded_event(people_csv(*rows))

    # when
    response = registry_import.handler(event, lambda_context)

    # then
    assert response == {"batchItemFailures": []}
    job = services().imports.job_of_upload(KEY, json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["eTag"])
    assert (job.status, job.department, job.accepted, job.rejected) == (ImportStatus.SUCCEEDED, "平房区民政局", 1, 1)
    assert job.file_name == "2025 人口.csv"


def test_the_same_event_handled_twice_imports_once(uploaded_event, lambda_context):
    from functions import registry_import

    # given
    event = uploaded_event(people_csv(person_row(), person_row()))
    registry_import.handler(event, lambda_context)
    entries = len(audit_log())

    # when the queue delivers it again
    response = registry_import.handler(copy.deepcopy(event), lambda_context)

    # then
    assert response == {"batchItemFailures": []}
    (job,) = services().imports.jobs_for_key(services_official(), KEY, limit=10).items
    assert (job.attempts, job.accepted, job.unchanged) == (1, 2, 0)
    assert len(audit_log()) == entries


def test_s3s_test_event_is_acknowledged_and_imports_nothing(local_cloud, events, lambda_context):
    from functions import registry_import

    response = registry_import.handler(events("sqs_s3_test_event.json"), lambda_context)

    assert response == {"batchItemFailures": []}
    assert services().imports.page(services_official(), limit=10, start=None).items == []


def test_a_record_that_is_not_an_s3_notification_fails_alone(uploaded_event, events, lambda_context):
    from functions import registry_import

    # given a batch of a good upload event and a garbled message
    event = uploaded_event(people_csv(person_row()))
    garbled = copy.deepcopy(events("sqs_s3_test_event.json")["Records"][0])
    garbled.update(messageId="0c2c6f0b-garbled", body="{not json")
    event["Records"].append(garbled)

    # when
    response = registry_import.handler(event, lambda_context)

    # then only the garbled one goes back to the queue
    assert response == {"batchItemFailures": [{"itemIdentifier": "0c2c6f0b-garbled"}]}
    (job,) = services().imports.jobs_for_key(services_official(), KEY, limit=10).items
    assert job.accepted == 1


def test_an_event_for_an_upload_deleted_meanwhile_ends_its_job_without_a_retry(uploaded_event, lambda_context):
    from functions import registry_import

    # given
    event = uploaded_event(people_csv(person_row()))
    version = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["versionId"]
    boto3.client("s3").delete_object(Bucket=get_settings().bucket("imports"), Key=KEY, VersionId=version)

    # when
    response = registry_import.handler(event, lambda_context)

    # then
    assert response == {"batchItemFailures": []}
    (job,) = services().imports.jobs_for_key(services_official(), KEY, limit=10).items
    assert job.status is ImportStatus.FAILED
    assert job.file_error == "the file was deleted before it could be imported"


def services_official():
    from factories import official

    return official()
