"""GraphQL for bulk imports of registry spreadsheets: upload URLs, jobs and their reports (officials).

`ImportQueries` and `ImportMutations` are merged into the schema beside the other registry fields.
A client asks `requestImportUpload` for a presigned PUT, uploads the file there, then follows the
job with `importJobs(sourceKey: <the key>)` or `node(id:)` until its status is final.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import Info, relay

from sunflower.api.errors import PermissionDeniedErrorType, ValidationErrorType, mutate
from sunflower.api.permissions import roles
from sunflower.api.relay import connection, page_request
from sunflower.auth.principals import Role
from sunflower.common.errors import NotFound
from sunflower.registries.imports import ImportJob, ImportStatus, UploadTicket
from sunflower.registries.service import ImportKind

ImportKindEnum = strawberry.enum(ImportKind, name="ImportKind", description="Which registry a file imports into.")
ImportJobStatusEnum = strawberry.enum(ImportStatus, name="ImportJobStatus")


@strawberry.type(
    name="ImportJob",
    description="The import of one uploaded spreadsheet: live counts while it runs, then its report.",
)
class ImportJobType(relay.Node):
    id: relay.NodeID[str]
    kind: ImportKindEnum | None = strawberry.field(description="Null if the file was not uploaded under a known kind.")
    status: ImportJobStatusEnum
    file_name: str
    source_key: str = strawberry.field(description="The object key the file was uploaded to.")
    department: str = strawberry.field(description="The department that uploaded it (from the key).")
    total: int = strawberry.field(description="Data rows in the file (an estimate while a workbook is read).")
    processed: int
    accepted: int = strawberry.field(description="Rows that created or changed a record.")
    unchanged: int = strawberry.field(description="Rows already registered exactly so.")
    rejected: int = strawberry.field(description="Rows not written; the report says why, by line.")
    progress: float = strawberry.field(description="Processed rows as a fraction of the total, 0 to 1.")
    file_error: str | None = strawberry.field(description="Why the file as a whole could not be imported.")
    error: str | None = strawberry.field(description="An internal fault; the import is retried automatically.")
    unknown_columns: list[str] = strawberry.field(description="Columns that were not recognised and were ignored.")
    header_line: int | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    job: strawberry.Private[ImportJob]

    @classmethod
    def from_domain(cls, job: ImportJob) -> "ImportJobType":
        return cls(
            id=job.id, kind=job.kind, status=job.status, file_name=job.file_name, source_key=job.key,
            department=job.department, total=job.total, processed=job.processed, accepted=job.accepted,
            unchanged=job.unchanged, rejected=job.rejected, progress=job.progress, file_error=job.file_error,
            error=job.error, unknown_columns=list(job.unknown_columns), header_line=job.header_line,
            attempts=job.attempts, created_at=job.created_at, started_at=job.started_at,
            finished_at=job.finished_at, job=job,
        )

    @strawberry.field(
        description="CSV of the rejected rows (line, reasons, the row as uploaded): a download link valid for 15 "
        "minutes; null until the job has finished. Issuing it is audited (X-Purpose) when it holds rejected rows."
    )
    def report_url(self, info: Info) -> str | None:
        ctx = info.context
        return ctx.services.imports.report_url(ctx.require_principal(), self.job, purpose=ctx.purpose)

    @strawberry.field(description="The report as JSON (counts and every rejected row's line and reasons), valid 15 minutes.")
    def summary_url(self, info: Info) -> str | None:
        ctx = info.context
        return ctx.services.imports.report_url(ctx.require_principal(), self.job, summary=True, purpose=ctx.purpose)

    @classmethod
    def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        ids = list(node_ids)
        ctx = info.context
        found = ctx.services.imports.jobs(ctx.require_principal(), ids)  # one batch read for every id
        return [cls.from_domain(found[i]) if i in found else None for i in ids]


@strawberry.type(name="ImportUpload", description="Where to PUT the file; the import starts when it lands.")
class ImportUploadType:
    key: str = strawberry.field(description="The object key; find the job with importJobs(sourceKey:).")
    url: str = strawberry.field(description="Presigned URL: send the file's bytes with HTTP PUT, as they are.")
    method: str
    expires_at: datetime

    @classmethod
    def from_domain(cls, ticket: UploadTicket) -> "ImportUploadType":
        return cls(key=ticket.key, url=ticket.url, method="PUT", expires_at=ticket.expires_at)


RequestImportUploadPayload = Annotated[
    ImportUploadType | ValidationErrorType | PermissionDeniedErrorType,
    strawberry.union("RequestImportUploadPayload"),
]


@strawberry.type
class ImportQueries:
    @strawberry.field(extensions=roles(Role.OFFICIAL), description="An import job; null if there is none.")
    def import_job(self, info: Info, id: relay.GlobalID) -> ImportJobType | None:
        if id.type_name != "ImportJob":
            return None
        ctx = info.context
        try:
            return ImportJobType.from_domain(ctx.services.imports.job(ctx.require_principal(), id.node_id))
        except NotFound:
            return None

    @strawberry.field(
        extensions=roles(Role.OFFICIAL),
        description="Import jobs, newest first; with sourceKey, only the jobs of uploads to that key.",
    )
    def import_jobs(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        source_key: str | None = None,
    ) -> relay.Connection[ImportJobType]:
        ctx = info.context
        imports = ctx.services.imports
        request = page_request(info, f"importJobs:{source_key or ''}", first, after)
        if source_key is not None:
            page = imports.jobs_for_key(ctx.require_principal(), source_key, limit=request.limit, start=request.start)
        else:
            page = imports.page(ctx.require_principal(), limit=request.limit, start=request.start)
        return connection(info, request, page, ImportJobType.from_domain)


@strawberry.type
class ImportMutations:
    @strawberry.mutation(
        extensions=roles(Role.OFFICIAL),
        description="A presigned URL to upload one CSV or XLSX file (UTF-8 or GB18030) into a registry, valid for 15 "
        "minutes. Headers may be Chinese or English; the file is imported as your department.",
    )
    def request_import_upload(self, info: Info, kind: ImportKindEnum, file_name: str) -> RequestImportUploadPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.imports.request_upload(ctx.require_principal(), ImportKind(kind), file_name),
            ImportUploadType.from_domain,
        )
