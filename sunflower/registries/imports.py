"""Bulk import of registry spreadsheets: the job, where jobs are kept, and the pipeline from an
uploaded object to rows written.

An upload to incoming/{kind}/{department}/{file} in the imports bucket starts a job. The job's id
is derived from the upload itself (bucket, key, ETag and which upload of that key), so a
redelivered event finds its job again; re-uploading the same bytes is a new job whose rows are all
`unchanged`. Rows go to RegistryService.import_rows in chunks, each row written whole or not at
all; the job's counts move after every chunk. The report (every rejected row with its line and
reasons, plus a JSON summary) goes to reports/{job id}.csv and .json.

Key design (in the `registries` table; prefixes live here and only here):
  IMPORT#{job id} / IMPORT     the job     gsi1: IMPORTSRC#{bucket}/{key} / {created}#{id}
                                            gsi2: IMPORTS / {created}#{id}
  IMPORTUPLOAD#{bucket}/{key}#{etag} / IMPORTUPLOAD   the newest job of those bytes at that key (ref)
"""

import hashlib
import json
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import IO, Any

from pynamodb.attributes import JSONAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from sunflower.audit.models import AuditAction, AuditEvent
from sunflower.audit.service import AuditService
from sunflower.auth.principals import Principal, PrincipalKind
from sunflower.aws.dynamo import overloaded_index, page_of, table_meta
from sunflower.common.clock import Clock
from sunflower.common.cursors import Page
from sunflower.common.errors import InvalidState, NotFound, ValidationFailed
from sunflower.common.ids import new_id
from sunflower.registries import access, drafts
from sunflower.registries.identifiers import parse_id_number
from sunflower.registries.import_store import INCOMING, REPORTS, ImportObjects
from sunflower.registries.service import ImportKind, RegistryService, Row, RowOutcome, RowStatus
from sunflower.registries.spreadsheets import (
    Limits,
    RejectedRowsWriter,
    SheetRow,
    Spreadsheet,
    SpreadsheetError,
    open_spreadsheet,
)
from sunflower.registries.uscc import parse_credit_code

CHUNK_ROWS = 500
URL_TTL_S = 15 * 60
UPLOAD_SUFFIXES = (".csv", ".xlsx", ".txt", ".tsv")
IMPORTER_ID = "registry-import"
_SPOOL_BYTES = 8 * 1024 * 1024


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Upload:
    """An object that landed under incoming/, as its S3 event describes it."""

    bucket: str
    key: str
    etag: str
    size: int
    version_id: str = ""  # S3 sets it on versioned buckets
    sequencer: str = ""  # and orders PUTs of one key with it
    event_time: str = ""

    @property
    def upload_id(self) -> str:
        """What tells two uploads of the same bytes to the same key apart (a redelivery keeps it)."""
        return self.version_id or self.sequencer or self.event_time

    @property
    def job_id(self) -> str:
        natural = "\n".join((self.bucket, self.key, self.etag, self.upload_id))
        return hashlib.sha256(natural.encode()).hexdigest()[:32]

    @classmethod
    def from_s3_record(cls, record: dict[str, Any]) -> "Upload":
        from urllib.parse import unquote_plus

        s3, obj = record["s3"], record["s3"]["object"]
        return cls(
            bucket=s3["bucket"]["name"],
            # S3 URL-encodes keys in events (moto encodes the slashes too).
            key=unquote_plus(obj["key"]),
            etag=obj.get("eTag", "").strip('"'),
            size=int(obj.get("size", 0)),
            version_id=obj.get("versionId") or "",
            sequencer=obj.get("sequencer") or "",
            event_time=record.get("eventTime", ""),
        )


@dataclass(frozen=True)
class ImportJob:
    id: str
    bucket: str
    key: str
    etag: str
    size: int
    upload_id: str
    created_at: datetime
    kind: ImportKind | None = None
    department: str = ""
    status: ImportStatus = ImportStatus.QUEUED
    total: int = 0  # rows in the file (an estimate while an XLSX is read)
    accepted: int = 0
    unchanged: int = 0
    rejected: int = 0
    file_error: str | None = None  # the file as a whole cannot be imported (final: not retried)
    error: str | None = None  # the import stopped on a fault of ours (retried)
    unknown_columns: tuple[str, ...] = ()
    header_line: int | None = None
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    report_key: str | None = None
    summary_key: str | None = None

    @property
    def file_name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def processed(self) -> int:
        return self.accepted + self.unchanged + self.rejected

    @property
    def progress(self) -> float:
        if self.status is ImportStatus.SUCCEEDED:
            return 1.0
        if not self.total:
            return 0.0
        return round(min(self.processed / self.total, 1.0), 4)

    @property
    def finished(self) -> bool:
        return self.status is ImportStatus.SUCCEEDED or (self.status is ImportStatus.FAILED and bool(self.file_error))

    def summary(self) -> dict[str, Any]:
        """What the CLI prints and reports/{id}.json starts with."""
        return {
            "job_id": self.id,
            "kind": self.kind.value if self.kind else None,
            "status": self.status.value,
            "accepted": self.accepted,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "total": self.total,
            "report_key": self.report_key,
            "file_error": self.file_error,
        }


@dataclass(frozen=True)
class UploadTicket:
    key: str
    url: str
    expires_at: datetime


# --- where jobs are kept ---------------------------------------------------------------------------


class _JobItem(Model):
    """An import job in the `registries` table (a second model on the table repository.py uses)."""

    Meta = table_meta("registries")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    by_source = overloaded_index("gsi1")
    by_creation = overloaded_index("gsi2")
    data = JSONAttribute(null=True)
    ref = UnicodeAttribute(null=True)


_LISTING = "IMPORTS"
_LIST_KEYS = ("pk", "sk", "gsi2pk", "gsi2sk")
_SOURCE_KEYS = ("pk", "sk", "gsi1pk", "gsi1sk")


def _job_key(job_id: str) -> tuple[str, str]:
    return f"IMPORT#{job_id}", "IMPORT"


def _source_pk(bucket: str, key: str) -> str:
    return f"IMPORTSRC#{bucket}/{key}"


def _upload_key(bucket: str, key: str, etag: str) -> tuple[str, str]:
    return f"IMPORTUPLOAD#{bucket}/{key}#{etag}", "IMPORTUPLOAD"


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _item(job: ImportJob) -> _JobItem:
    data = {
        "id": job.id, "bucket": job.bucket, "key": job.key, "etag": job.etag, "size": job.size,
        "upload_id": job.upload_id, "created_at": job.created_at.isoformat(),
        "kind": job.kind.value if job.kind else None, "department": job.department, "status": job.status.value,
        "total": job.total, "accepted": job.accepted, "unchanged": job.unchanged, "rejected": job.rejected,
        "file_error": job.file_error, "error": job.error, "unknown_columns": list(job.unknown_columns),
        "header_line": job.header_line, "attempts": job.attempts,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "report_key": job.report_key, "summary_key": job.summary_key,
    }
    item = _JobItem(*_job_key(job.id), data=data)
    created = f"{job.created_at.isoformat()}#{job.id}"
    item.gsi1pk, item.gsi1sk = _source_pk(job.bucket, job.key), created
    item.gsi2pk, item.gsi2sk = _LISTING, created
    return item


def _job(item: _JobItem) -> ImportJob:
    d = item.data
    return ImportJob(
        id=d["id"], bucket=d["bucket"], key=d["key"], etag=d["etag"], size=int(d["size"]), upload_id=d["upload_id"],
        created_at=datetime.fromisoformat(d["created_at"]), kind=ImportKind(d["kind"]) if d.get("kind") else None,
        department=d.get("department", ""), status=ImportStatus(d["status"]), total=int(d.get("total", 0)),
        accepted=int(d.get("accepted", 0)), unchanged=int(d.get("unchanged", 0)), rejected=int(d.get("rejected", 0)),
        file_error=d.get("file_error"), error=d.get("error"), unknown_columns=tuple(d.get("unknown_columns") or ()),
        header_line=d.get("header_line"), attempts=int(d.get("attempts", 0)), started_at=_time(d.get("started_at")),
        finished_at=_time(d.get("finished_at")), report_key=d.get("report_key"), summary_key=d.get("summary_key"),
    )


class ImportJobRepository:
    def add_or_get(self, job: ImportJob) -> ImportJob:
        """Create the job; if it exists (a redelivered event), the stored one."""
        try:
            _item(job).save(condition=_JobItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return self.get(job.id)
        _JobItem(*_upload_key(job.bucket, job.key, job.etag), ref=job.id).save()
        return job

    def of_upload(self, bucket: str, key: str, etag: str) -> ImportJob | None:
        """The newest job of these bytes at this key (a key read: cheap to poll)."""
        try:
            pointer = _JobItem.get(*_upload_key(bucket, key, etag), consistent_read=True)
        except _JobItem.DoesNotExist:
            return None
        return self.get(pointer.ref)

    def save(self, job: ImportJob) -> ImportJob:
        _item(job).save()
        return job

    def get(self, job_id: str) -> ImportJob:
        try:
            return _job(_JobItem.get(*_job_key(job_id), consistent_read=True))
        except _JobItem.DoesNotExist:
            raise NotFound(f"no import job {job_id}") from None

    def get_many(self, job_ids: Iterable[str]) -> dict[str, ImportJob]:
        keys = [_job_key(i) for i in dict.fromkeys(job_ids) if i]
        return {j.id: j for j in map(_job, _JobItem.batch_get(keys))}

    def page(self, *, limit: int, start: dict | None) -> Page[ImportJob]:
        """Newest first."""
        result = _JobItem.by_creation.query(
            _LISTING, scan_index_forward=False, limit=limit, page_size=limit, last_evaluated_key=start
        )
        return page_of(result, _job, _LIST_KEYS)

    def by_source(self, bucket: str, key: str, *, limit: int, start: dict | None = None) -> Page[ImportJob]:
        """Jobs of uploads to this key, newest first."""
        result = _JobItem.by_source.query(
            _source_pk(bucket, key), scan_index_forward=False, limit=limit, page_size=limit, last_evaluated_key=start
        )
        return page_of(result, _job, _SOURCE_KEYS)


# --- the rules -------------------------------------------------------------------------------------


_UNSAFE_IN_KEYS = re.compile(r"[^\w.\-]+")


def safe_name(text: str, *, fallback: str = "file") -> str:
    """A file or folder name that is one safe S3 key segment (letters of any script, digits, . - _)."""
    cleaned = _UNSAFE_IN_KEYS.sub("_", unicodedata.normalize("NFKC", text).strip())
    cleaned = re.sub(r"_*\._*", ".", cleaned).strip("._")  # "人口 (更新).csv" -> "人口_更新.csv"
    return cleaned[-100:] or fallback


def importer(department: str) -> Principal:
    """The system principal that imports an upload; the department is recorded with the job."""
    return Principal(id=IMPORTER_ID, kind=PrincipalKind.SYSTEM, department=department or None)


def _duplicate_key(kind: ImportKind, fields: dict[str, str], today: date) -> tuple[str, ...] | None:
    """What makes two rows of one file the same record, as the service decides it within a chunk."""
    try:
        if kind is ImportKind.PERSON:
            return (parse_id_number(fields.get("id_number", ""), today=today).value,)
        if kind is ImportKind.ENTITY:
            return (parse_credit_code(fields.get("credit_code", "")).value,)
        draft = drafts.credit_draft(fields, today=today)
    except ValidationFailed:
        return None
    if draft.decision_number:
        return draft.department, draft.decision_number
    return (draft.department, "auto", draft.subject_key, draft.category.value, draft.decided_on.isoformat(), draft.summary)


_DRAFTS = {ImportKind.PERSON: drafts.person_draft, ImportKind.ENTITY: drafts.entity_draft, ImportKind.CREDIT: drafts.credit_draft}


def _other_problems(kind: ImportKind, row: SheetRow, today: date) -> tuple[str, ...]:
    """What validation says about a row rejected while reading, so the report lists every reason at once."""
    flagged = {p.split(":", 1)[0] for p in row.problems}
    try:
        _DRAFTS[kind](row.fields, today=today)
    except ValidationFailed as exc:
        return tuple(f"{p.field}: {p.message}" for p in exc.problems if p.field not in flagged)
    return ()


def _duplicate_reason(kind: ImportKind, line: int) -> str:
    if kind is ImportKind.PERSON:
        return f"id_number: same person as line {line}"
    if kind is ImportKind.ENTITY:
        return f"credit_code: same entity as line {line}"
    return f"same decision as line {line}"


class ImportService:
    def __init__(
        self,
        jobs: ImportJobRepository,
        registries: RegistryService,
        objects: ImportObjects,
        clock: Clock,
        *,
        limits: Limits = Limits(),
        chunk_rows: int = CHUNK_ROWS,
        audit: AuditService | None = None,
    ) -> None:
        self._audit = audit
        self._jobs = jobs
        self._registries = registries
        self._objects = objects
        self._clock = clock
        self.limits = limits
        self._chunk_rows = chunk_rows

    # --- for people (GraphQL, CLI) -----------------------------------------------------------------

    def request_upload(self, viewer: Principal, kind: ImportKind, file_name: str) -> UploadTicket:
        """A presigned PUT for one file; uploading it starts the import as the viewer's department."""
        access.require_official(viewer, "import registry files")
        name = file_name.strip().rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
        if not name.lower().endswith(UPLOAD_SUFFIXES):
            raise ValidationFailed.on("fileName", "upload a .csv or .xlsx file (save other formats as one of these)")
        owner = safe_name(viewer.department or viewer.id, fallback="official")
        key = f"{INCOMING}{kind.value}/{owner}/{new_id()}-{safe_name(name)}"
        url = self._objects.upload_url(key, expires_s=URL_TTL_S)
        return UploadTicket(key=key, url=url, expires_at=self._clock() + timedelta(seconds=URL_TTL_S))

    def job(self, viewer: Principal, job_id: str) -> ImportJob:
        access.require_official(viewer, "see import jobs")
        return self._jobs.get(job_id)

    def jobs(self, viewer: Principal, job_ids: Iterable[str]) -> dict[str, ImportJob]:
        access.require_official(viewer, "see import jobs")
        return self._jobs.get_many(job_ids)

    def page(self, viewer: Principal, *, limit: int, start: dict | None) -> Page[ImportJob]:
        access.require_official(viewer, "see import jobs")
        return self._jobs.page(limit=limit, start=start)

    def jobs_for_key(self, viewer: Principal, key: str, *, limit: int, start: dict | None = None) -> Page[ImportJob]:
        """Jobs of uploads to one key of the imports bucket, newest first."""
        access.require_official(viewer, "see import jobs")
        return self._jobs.by_source(self._objects.bucket, key, limit=limit, start=start)

    def report_url(self, viewer: Principal, job: ImportJob, *, summary: bool = False, purpose: str = "") -> str | None:
        """A presigned GET of the job's report, valid for 15 minutes; None until there is one.

        Rejected rows are personal data as uploaded: handing out a link to them is audited.
        """
        access.require_official(viewer, "download import reports")
        key = job.summary_key if summary else job.report_key
        if not key:
            return None
        if job.rejected and self._audit is not None:
            self._audit.record(AuditEvent.by(
                viewer, AuditAction.EXPORT, "import_report", job.id, purpose.strip() or "download import report",
                format="json" if summary else "csv",
            ))
        stem = job.file_name.rsplit(".", 1)[0]
        return self._objects.download_url(
            key, expires_s=URL_TTL_S, file_name=f"{safe_name(stem)}-report.{'json' if summary else 'csv'}"
        )

    # --- for the command line (it acts on the cloud directly, like an uploader with bucket access) --

    def submit(self, kind: ImportKind, department: str, file_name: str, body: bytes) -> tuple[str, str]:
        """Upload a file as a department does; returns its key and ETag (the import starts from the event)."""
        key = f"{INCOMING}{kind.value}/{safe_name(department, fallback='unknown')}/{new_id()}-{safe_name(file_name)}"
        return key, self._objects.upload(key, body)

    def job_of_upload(self, key: str, etag: str) -> ImportJob | None:
        """The newest job of this upload, once its event has been received."""
        return self._jobs.of_upload(self._objects.bucket, key, etag)

    # --- the pipeline (S3 event -> rows written) ---------------------------------------------------

    def run(self, upload: Upload) -> ImportJob:
        """Import one upload. File-level problems end the job `failed` with `file_error` (final);
        anything else marks it failed with `error` and raises, so the event is delivered again."""
        job = self._jobs.add_or_get(
            ImportJob(upload.job_id, upload.bucket, upload.key, upload.etag, upload.size, upload.upload_id, self._clock())
        )
        if job.finished:
            return job  # a redelivered event of a finished import
        job = self._jobs.save(replace(
            job, status=ImportStatus.RUNNING, attempts=job.attempts + 1, started_at=self._clock(), finished_at=None,
            accepted=0, unchanged=0, rejected=0, error=None, file_error=None,
        ))
        try:
            return self._run(job, upload)
        except Exception as exc:
            # Only the kind of fault: messages of lower layers may quote row data.
            self._jobs.save(replace(
                job, status=ImportStatus.FAILED, finished_at=self._clock(),
                error=f"the import stopped on an internal fault ({type(exc).__name__}); it is retried automatically",
            ))
            raise

    def _run(self, job: ImportJob, upload: Upload) -> ImportJob:
        parts = upload.key.removeprefix(INCOMING).split("/")
        kind = next((k for k in ImportKind if parts and parts[0] == k.value), None)
        job = replace(job, kind=kind, department=parts[1] if len(parts) >= 3 else "")
        if not upload.key.startswith(INCOMING) or kind is None or len(parts) < 3:
            return self._fail(job, "upload files to incoming/{person|entity|credit}/{department}/{file name}")
        if upload.size > self.limits.max_bytes:
            return self._fail(job, _too_big(upload.size, self.limits.max_bytes))
        try:
            data, _ = self._objects.fetch(
                upload.key, etag=upload.etag, version_id=upload.version_id or None, max_bytes=self.limits.max_bytes
            )
            sheet = open_spreadsheet(data, kind.value, file_name=job.file_name, limits=self.limits)
        except (NotFound, InvalidState, SpreadsheetError) as exc:
            return self._fail(job, exc.message)
        del data  # the sheet keeps what it needs; a big upload should not stay in memory twice
        job = self._jobs.save(replace(
            job, total=sheet.rows_estimate or 0, unknown_columns=sheet.unknown_columns, header_line=sheet.header_line,
        ))
        with tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as csv_out, tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as rejected_out:
            report = RejectedRowsWriter(csv_out, sheet.headers)
            try:
                job = self._import_rows(job, kind, sheet, report, rejected_out)
            except SpreadsheetError as exc:  # an XLSX damaged further down than its header
                report.close()
                return self._fail(job, exc.message)
            report.close()
            if job.processed == 0:
                return self._fail(job, f"the file has a header row (line {sheet.header_line}) but no data rows below it")
            job = replace(job, status=ImportStatus.SUCCEEDED, total=job.processed, finished_at=self._clock())
            return self._finish(job, csv_out, rejected_out)

    def _import_rows(
        self, job: ImportJob, kind: ImportKind, sheet: Spreadsheet, report: RejectedRowsWriter, rejected_out: IO[bytes]
    ) -> ImportJob:
        actor = importer(job.department)
        purpose = f"bulk import {job.id} ({job.file_name}) from {job.department}"
        today = self._registries.today()
        first_line: dict[tuple[str, ...], int] = {}  # rows written so far, by what makes them one record
        counts = {s: 0 for s in RowStatus}
        for chunk in _chunks(sheet.rows(), self._chunk_rows):
            outcomes: dict[int, RowOutcome] = {}
            keys: dict[int, tuple[str, ...] | None] = {}
            pending: list[SheetRow] = []
            for row in chunk:
                if row.problems:
                    reasons = row.problems + _other_problems(kind, row, today)
                    outcomes[row.line] = RowOutcome(row.line, RowStatus.REJECTED, reasons)
                    continue
                keys[row.line] = key = _duplicate_key(kind, row.fields, today)
                if key is not None and key in first_line:
                    outcomes[row.line] = RowOutcome(row.line, RowStatus.REJECTED, (_duplicate_reason(kind, first_line[key]),))
                    continue
                pending.append(row)
            if pending:
                written = self._registries.import_rows(
                    actor, kind, [Row(r.line, r.fields) for r in pending], purpose
                )
                outcomes.update((o.line, o) for o in written)
            for row in chunk:
                outcome = outcomes[row.line]
                counts[outcome.status] += 1
                if outcome.status is RowStatus.REJECTED:
                    report.add(row.line, outcome.reasons, row.cells)
                    entry = json.dumps({"line": row.line, "reasons": list(outcome.reasons)}, ensure_ascii=False)
                    rejected_out.write(((",\n" if report.count > 1 else "\n") + entry).encode())
                elif (key := keys.get(row.line)) is not None:
                    first_line.setdefault(key, row.line)
            job = self._jobs.save(replace(
                job, accepted=counts[RowStatus.ACCEPTED], unchanged=counts[RowStatus.UNCHANGED],
                rejected=counts[RowStatus.REJECTED], total=max(job.total, sum(counts.values())),
            ))
        return job

    def _fail(self, job: ImportJob, reason: str) -> ImportJob:
        job = replace(job, status=ImportStatus.FAILED, file_error=reason, finished_at=self._clock())
        with tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as csv_out, tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as none:
            RejectedRowsWriter(csv_out, ()).close()
            return self._finish(job, csv_out, none)

    def _finish(self, job: ImportJob, csv_out: IO[bytes], rejected_out: IO[bytes]) -> ImportJob:
        """Write the report objects, then the finished job (so a finished job always has its report)."""
        job = replace(job, report_key=f"{REPORTS}{job.id}.csv", summary_key=f"{REPORTS}{job.id}.json")
        csv_out.seek(0)
        self._objects.put(job.report_key, csv_out, "text/csv; charset=utf-8")
        with tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as summary:
            head = {
                **job.summary(),
                "summary_key": job.summary_key,
                "department": job.department,
                "source": {"bucket": job.bucket, "key": job.key, "etag": job.etag, "size": job.size},
                "header_line": job.header_line,
                "unknown_columns": list(job.unknown_columns),
                "created_at": job.created_at.isoformat(),
                "started_at": job.started_at.isoformat() if job.started_at else None,
                "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            }
            summary.write(json.dumps(head, ensure_ascii=False, indent=1)[:-2].encode())
            summary.write(b',\n "rejected_rows": [')
            rejected_out.seek(0)
            shutil.copyfileobj(rejected_out, summary)
            summary.write(b"\n ]\n}\n")
            summary.seek(0)
            self._objects.put(job.summary_key, summary, "application/json")
        return self._jobs.save(job)


def _too_big(size: int, limit: int) -> str:
    return f"the file is {size / 2**20:.1f} MB, over the {limit / 2**20:.0f} MB limit; split it into smaller files"


def _chunks(rows: Iterator[SheetRow], size: int) -> Iterator[list[SheetRow]]:
    chunk: list[SheetRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
