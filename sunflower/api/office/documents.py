"""GraphQL for 公文 official documents: outgoing (draft, review, countersign, sign-off, numbering,
distribution, receipts) and incoming (registration, proposed handling, instruction, handling, filing).

Every step is a task of the document's workflow: it reaches people's inboxes and may be completed with
completeTask, or here by the document's id with typed input (the step is found from the caller's open
task). Attachments go through presigned URLs: requestDocumentAttachmentUpload, an HTTP PUT of the file
with the headers given, confirmDocumentAttachment; then requestDocumentAttachmentDownload. Only the
document's participants see them; issuing a download link is audited with the X-Purpose header.
"""

from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from strawberry import Info, relay
from strawberry.dataloader import DataLoader

from sunflower.api.errors import (
    InvalidStateErrorType,
    NotFoundErrorType,
    PermissionDeniedErrorType,
    ValidationErrorType,
    mutate,
)
from sunflower.api.office.supervision import SupervisionItemType
from sunflower.api.office.types import WorkflowInstanceType, instance_loader, node_id, office
from sunflower.api.permissions import roles, signed_in
from sunflower.api.relay import connection, page_request
from sunflower.auth.principals import Role
from sunflower.common.errors import NotFound, PermissionDenied
from sunflower.office.documents.models import (
    Attachment,
    AttachmentStatus,
    Document,
    DocumentKind,
    DocumentStatus,
    DownloadTicket,
    Opinion,
    Receipt,
    Retention,
    SupervisionRequest,
    UploadTicket,
    Urgency,
)

DOCUMENT = "OfficialDocument"
DRAFTERS = (Role.OFFICIAL, Role.ADMIN)

OfficialDocumentKindEnum = strawberry.enum(DocumentKind, name="OfficialDocumentKind", description="发文 or 收文.")
OfficialDocumentStatusEnum = strawberry.enum(
    DocumentStatus, name="OfficialDocumentStatus",
    description="Outgoing: DRAFTING, IN_REVIEW, COUNTERSIGNING, SIGNING, DISTRIBUTING, DISTRIBUTED, COMPLETED. "
    "Incoming: REGISTERED, PROPOSING, INSTRUCTING, HANDLING, FILING, FILED.",
)
DocumentUrgencyEnum = strawberry.enum(Urgency, name="DocumentUrgency", description="平件, 急件, 特急.")
DocumentRetentionEnum = strawberry.enum(Retention, name="DocumentRetention", description="How long a filed document is kept.")
AttachmentStatusEnum = strawberry.enum(
    AttachmentStatus, name="DocumentAttachmentStatus",
    description="PENDING until the upload is confirmed; only READY attachments can be downloaded.",
)


def supervision_item_loader(info: Info) -> DataLoader[str, Any]:
    """Supervision items by id, for viewers who may read them (one batch read for a whole list)."""
    services = info.context.services

    def fetch(viewer, ids: list[str]) -> dict:
        try:
            return services.office.supervision.get_many(viewer, ids)
        except PermissionDenied:
            return {}

    return info.context.loaders.loader("office.supervision_item", fetch)


def document_gid(document_id: str) -> strawberry.ID:
    return strawberry.ID(relay.to_base64(DOCUMENT, document_id))


def _document_id(global_id: relay.GlobalID) -> str:
    return node_id(global_id, DOCUMENT, "documentId")


# --- files (meetings' materials use the same) --------------------------------------------------


@strawberry.type(name="UploadHeader", description="A header the upload must send exactly as given (it is signed).")
class UploadHeaderType:
    name: str
    value: str


@strawberry.type(
    name="FileUpload",
    description="Where to PUT one file: send its bytes with HTTP PUT and exactly these headers within 15 minutes, "
    "then confirm the upload.",
)
class FileUploadType:
    file_id: strawberry.ID = strawberry.field(description="The attachment's (or material's) id, to confirm it with.")
    key: str = strawberry.field(description="The object key in the office bucket.")
    url: str
    method: str
    headers: list[UploadHeaderType]
    expires_at: datetime

    @classmethod
    def of(cls, ticket: UploadTicket) -> "FileUploadType":
        return cls(
            file_id=strawberry.ID(ticket.attachment_id), key=ticket.key, url=ticket.url, method=ticket.method,
            headers=[UploadHeaderType(name=k, value=v) for k, v in ticket.headers.items()], expires_at=ticket.expires_at,
        )


@strawberry.type(name="FileDownload", description="A presigned GET of one file, valid for 15 minutes.")
class FileDownloadType:
    url: str
    file_name: str
    expires_at: datetime

    @classmethod
    def of(cls, ticket: DownloadTicket) -> "FileDownloadType":
        return cls(url=ticket.url, file_name=ticket.file_name, expires_at=ticket.expires_at)


@strawberry.input(
    name="SupervisionRequestInput",
    description="Turn an instruction or a decision into a supervision item (督办) in the same step.",
)
class SupervisionRequestInput:
    deadline: date = strawberry.field(description="A district date, today or later.")
    responsible_department: str | None = strawberry.field(
        default=None, description="Documents: the handling department when left out. Meeting decisions: required."
    )
    assisting_departments: list[str] = strawberry.field(default_factory=list)
    title: str | None = strawberry.field(default=None, description="The document's title (or the decision) when left out.")

    def domain(self) -> SupervisionRequest:
        return SupervisionRequest(self.deadline, self.responsible_department, tuple(self.assisting_departments), self.title)


# --- types -----------------------------------------------------------------------------------------


@strawberry.type(name="DocumentReceipt", description="A recipient department's acknowledgement (签收).")
class ReceiptType:
    department_id: str
    acknowledged_at: datetime | None = strawberry.field(description="Null while it is outstanding.")
    acknowledged_by: str | None
    note: str | None

    @classmethod
    def of(cls, r: Receipt) -> "ReceiptType":
        return cls(department_id=r.department_id, acknowledged_at=r.acknowledged_at, acknowledged_by=r.acknowledged_by,
                   note=r.note)


@strawberry.type(name="DocumentOpinion", description="A completed step of the document's workflow.")
class OpinionType:
    step: str = strawberry.field(
        description="draft, review, countersign, sign, distribute, acknowledge; propose, instruct, handle, file."
    )
    task_name: str
    actor: str = strawberry.field(description="Who completed it, e.g. person:w-1.")
    at: datetime
    approved: bool | None = strawberry.field(description="Review and sign-off: approved; countersigning: agrees.")
    opinion: str | None

    @classmethod
    def of(cls, o: Opinion) -> "OpinionType":
        return cls(step=o.step, task_name=o.task_name, actor=o.actor, at=o.at, approved=o.approved, opinion=o.opinion)


@strawberry.type(name="DocumentAttachment")
class AttachmentType:
    id: strawberry.ID = strawberry.field(description="The attachment's id within its document.")
    file_name: str
    content_type: str
    size: int = strawberry.field(description="Bytes.")
    status: AttachmentStatusEnum
    uploaded_by: str
    requested_at: datetime
    confirmed_at: datetime | None

    @classmethod
    def of(cls, a: Attachment) -> "AttachmentType":
        return cls(id=strawberry.ID(a.id), file_name=a.file_name, content_type=a.content_type, size=a.size,
                   status=a.status, uploaded_by=a.uploaded_by, requested_at=a.requested_at, confirmed_at=a.confirmed_at)


@strawberry.type(name="OfficialDocument", description="公文: an outgoing (发文) or incoming (收文) official document.")
class OfficialDocumentType(relay.Node):
    id: relay.NodeID[str]
    kind: OfficialDocumentKindEnum
    title: str
    status: OfficialDocumentStatusEnum
    urgency: DocumentUrgencyEnum
    created_by: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = strawberry.field(description="Every receipt in (outgoing), or filed (incoming).")
    number: str | None = strawberry.field(description="Outgoing: 发文字号, e.g. 平政发〔2026〕12号, once signed off.")
    organ_code: str | None = strawberry.field(description="Outgoing: the issuing organ's code, e.g. 平政发.")
    drafter_id: str | None
    drafter_department: str | None
    countersign_departments: list[str]
    signer_id: str | None
    recipients: list[str]
    signed_at: datetime | None
    distributed_at: datetime | None
    receipts: list[ReceiptType]
    registration_number: str | None = strawberry.field(description="Incoming: 收文编号, e.g. 平政收〔2026〕3号.")
    source_organ: str | None
    source_number: str | None = strawberry.field(description="Incoming: the sender's own number (来文字号).")
    received_on: date | None
    proposal: str | None = strawberry.field(description="Incoming: the proposed handling (拟办意见).")
    leader_id: str | None
    instruction: str | None = strawberry.field(description="Incoming: the leader's instruction (批示).")
    handling_department: str | None
    result: str | None
    retention: DocumentRetentionEnum | None
    archive_ref: str | None
    supervision_item_id: strawberry.Private[str | None]
    instance_id: strawberry.Private[str | None]

    @classmethod
    def of(cls, d: Document) -> "OfficialDocumentType":
        return cls(
            id=d.id, kind=d.kind, title=d.title, status=d.status, urgency=d.urgency, created_by=d.created_by,
            created_at=d.created_at, updated_at=d.updated_at, completed_at=d.completed_at,
            number=d.number.text if d.number else None, organ_code=d.organ_code, drafter_id=d.drafter_id,
            drafter_department=d.drafter_department, countersign_departments=list(d.countersign_departments),
            signer_id=d.signer_id, recipients=list(d.recipients), signed_at=d.signed_at, distributed_at=d.distributed_at,
            receipts=[ReceiptType.of(r) for r in d.receipts],
            registration_number=d.registration_number.text if d.registration_number else None,
            source_organ=d.source_organ, source_number=d.source_number, received_on=d.received_on, proposal=d.proposal,
            leader_id=d.leader_id, instruction=d.instruction, handling_department=d.handling_department, result=d.result,
            retention=d.retention, archive_ref=d.archive_ref, supervision_item_id=d.supervision_item_id,
            instance_id=d.instance_id,
        )

    @classmethod
    def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        ids = list(node_ids)
        found = office(info).documents.get_many(info.context.require_principal(), ids)  # one batch read
        return [cls.of(found[i]) if i in found else None for i in ids]

    @strawberry.field(description="Its workflow: who holds it now (openTasks) and the full timeline.")
    async def workflow(self, info: Info) -> WorkflowInstanceType | None:
        if not self.instance_id:
            return None
        instance = await instance_loader(info).load(self.instance_id)
        return WorkflowInstanceType.of(instance) if instance else None

    @strawberry.field(description="The supervision item the leader's instruction became; null if none or not yours to read.")
    async def supervision_item(self, info: Info) -> SupervisionItemType | None:
        if not self.supervision_item_id:
            return None
        item = await supervision_item_loader(info).load(self.supervision_item_id)
        return SupervisionItemType.of(item) if item else None

    @strawberry.field(description="Every completed step with its opinion, oldest first (receipts included).")
    def history(self, info: Info) -> list[OpinionType]:
        return [OpinionType.of(o) for o in office(info).documents.history(info.context.require_principal(), self.id)]

    @strawberry.field(description="Its attachments; null unless you take part in it (auditors see the record, not its files).")
    def attachments(self, info: Info) -> list[AttachmentType] | None:
        try:
            found = office(info).documents.attachments(info.context.require_principal(), self.id)
        except PermissionDenied:
            return None
        return [AttachmentType.of(a) for a in found]


@strawberry.type(name="DocumentNumberEntry", description="One line of a numbering register (登记簿).")
class NumberEntryType:
    seq: int
    number: str
    document_id: strawberry.ID


# --- payloads and inputs ---------------------------------------------------------------------------

_Errors = ValidationErrorType | NotFoundErrorType | PermissionDeniedErrorType | InvalidStateErrorType
OfficialDocumentPayload = Annotated[OfficialDocumentType | _Errors, strawberry.union("OfficialDocumentPayload")]
DocumentAttachmentPayload = Annotated[AttachmentType | _Errors, strawberry.union("DocumentAttachmentPayload")]
FileUploadPayload = Annotated[FileUploadType | _Errors, strawberry.union("FileUploadPayload")]
FileDownloadPayload = Annotated[FileDownloadType | _Errors, strawberry.union("FileDownloadPayload")]


@strawberry.input(name="DraftOutgoingDocumentInput")
class DraftOutgoingInput:
    title: str = strawberry.field(description="1 to 200 characters.")
    organ_code: str = strawberry.field(description="The issuing organ's code, e.g. 平政发: its numbers form one sequence.")
    signer_id: str = strawberry.field(description="The leader who signs it off (a staff id).")
    recipients: list[str] = strawberry.field(description="Department codes it is sent to; each acknowledges receipt.")
    countersign_departments: list[str] = strawberry.field(
        default_factory=list, description="Departments that countersign it, all at the same time (at most 6)."
    )
    urgency: DocumentUrgencyEnum = Urgency.NORMAL


@strawberry.input(name="DocumentNoteInput")
class NoteInput:
    document_id: relay.GlobalID
    note: str | None = strawberry.field(default=None, description="At most 2000 characters.")


@strawberry.input(name="DocumentDecisionInput")
class DecisionInput:
    document_id: relay.GlobalID
    approved: bool = strawberry.field(description="False sends it back to its drafter.")
    opinion: str | None = strawberry.field(default=None, description="At most 2000 characters.")


@strawberry.input(name="CountersignDocumentInput")
class CountersignInput:
    document_id: relay.GlobalID
    agree: bool
    opinion: str | None = strawberry.field(default=None, description="At most 2000 characters.")


@strawberry.input(name="RegisterIncomingDocumentInput")
class RegisterIncomingInput:
    title: str
    source_organ: str = strawberry.field(description="Who sent it (来文单位).")
    received_on: date = strawberry.field(description="A district date, not in the future.")
    source_number: str | None = strawberry.field(default=None, description="The sender's number (来文字号).")
    urgency: DocumentUrgencyEnum = Urgency.NORMAL


@strawberry.input(name="ProposeDocumentHandlingInput")
class ProposeInput:
    document_id: relay.GlobalID
    proposal: str = strawberry.field(description="The proposed handling (拟办意见), 1 to 2000 characters.")
    leader_id: str = strawberry.field(description="The leader who instructs next (a staff id).")
    handling_department: str


@strawberry.input(name="InstructDocumentInput")
class InstructInput:
    document_id: relay.GlobalID
    instruction: str = strawberry.field(description="The instruction (批示), 1 to 2000 characters.")
    handling_department: str | None = strawberry.field(default=None, description="The proposed one when left out.")
    supervision: SupervisionRequestInput | None = strawberry.field(
        default=None, description="Also make the instruction a supervision item, in the same step."
    )


@strawberry.input(name="ReportDocumentHandledInput")
class HandledInput:
    document_id: relay.GlobalID
    result: str = strawberry.field(description="1 to 4000 characters.")


@strawberry.input(name="FileDocumentInput")
class FileInput:
    document_id: relay.GlobalID
    retention: DocumentRetentionEnum
    archive_ref: str | None = None


@strawberry.input(name="RequestDocumentAttachmentUploadInput")
class UploadInput:
    document_id: relay.GlobalID
    file_name: str = strawberry.field(description="Made safe for storage (path and odd characters removed).")
    content_type: str = strawberry.field(description="PDF, OFD, Word, WPS, Excel, PowerPoint, JPEG, PNG or plain text.")
    size: int = strawberry.field(description="Bytes, at most 50 MB: the upload must be exactly this long.")


@strawberry.input(name="DocumentAttachmentInput")
class AttachmentInput:
    document_id: relay.GlobalID
    attachment_id: strawberry.ID


# --- queries and mutations -------------------------------------------------------------------------


@strawberry.type
class DocumentQueries:
    @strawberry.field(extensions=signed_in(), description="An official document you take part in; null if there is none.")
    def official_document(self, info: Info, id: relay.GlobalID) -> OfficialDocumentType | None:
        if id.type_name != DOCUMENT:
            return None
        try:
            return OfficialDocumentType.of(office(info).documents.get(info.context.require_principal(), id.node_id))
        except NotFound:
            return None

    @strawberry.field(
        extensions=signed_in(),
        description="Official documents of a kind that you (or your department) take part in, newest first; "
        "auditors see all of them.",
    )
    def official_documents(
        self, info: Info, kind: OfficialDocumentKindEnum, first: int | None = None, after: str | None = None
    ) -> relay.Connection[OfficialDocumentType]:
        request = page_request(info, f"officialDocuments:{kind.value}", first, after)
        page = office(info).documents.documents(
            info.context.require_principal(), DocumentKind(kind), limit=request.limit, start=request.start
        )
        return connection(info, request, page, OfficialDocumentType.of)

    @strawberry.field(
        extensions=roles(Role.OFFICIAL, Role.AUDITOR),
        description="The numbering register of an organ's code and year, in number order: the secretariat and auditors.",
    )
    def document_number_register(
        self, info: Info, series: str, year: int, first: int | None = None, after: str | None = None
    ) -> relay.Connection[NumberEntryType]:
        request = page_request(info, f"documentNumberRegister:{series}:{year}", first, after)
        page = office(info).documents.register(
            info.context.require_principal(), series, year, limit=request.limit, start=request.start
        )
        return connection(info, request, page, lambda row: NumberEntryType(
            seq=row[0], number=f"{series}〔{year}〕{row[0]}号", document_id=document_gid(row[1])))


def _step(info: Info, call) -> Any:
    """Run a step on the service with the caller; its result is the document."""
    return mutate(lambda: call(office(info).documents, info.context.require_principal()), OfficialDocumentType.of)


@strawberry.type
class DocumentMutations:
    @strawberry.mutation(
        extensions=roles(*DRAFTERS),
        description="Start an outgoing document (发文); your draft task opens: attach its files, then submit it.",
    )
    def draft_outgoing_document(self, info: Info, input: DraftOutgoingInput) -> OfficialDocumentPayload:
        return _step(info, lambda docs, viewer: docs.draft_outgoing(
            viewer, title=input.title, organ_code=input.organ_code, signer_id=input.signer_id,
            recipients=input.recipients, countersign_departments=input.countersign_departments,
            urgency=Urgency(input.urgency),
        ))

    @strawberry.mutation(extensions=signed_in(), description="The drafter submits the draft for review (拟稿).")
    def submit_document_draft(self, info: Info, input: NoteInput) -> OfficialDocumentPayload:
        return _step(info, lambda docs, viewer: docs.submit_draft(viewer, _document_id(input.document_id), note=input.note))

    @strawberry.mutation(extensions=signed_in(), description="The secretariat's review (核稿): approve, or send back.")
    def review_document(self, info: Info, input: DecisionInput) -> OfficialDocumentPayload:
        return _step(info, lambda docs, viewer: docs.review(
            viewer, _document_id(input.document_id), approved=input.approved, opinion=input.opinion))

    @strawberry.mutation(
        extensions=signed_in(),
        description="Countersign (会签) for your department; the other departments countersign at the same time.",
    )
    def countersign_document(self, info: Info, input: CountersignInput) -> OfficialDocumentPayload:
        return _step(info, lambda docs, viewer: docs.countersign(
            viewer, _document_id(input.document_id), agree=input.agree, opinion=input.opinion))

    @strawberry.mutation(
        extensions=signed_in(),
        description="The leader's sign-off (签发): signed, the document is numbered at once; otherwise back to the drafter.",
    )
    def sign_off_document(self, info: Info, input: DecisionInput) -> OfficialDocumentPayload:
        return _step(info, lambda docs, viewer: docs.sign_off(
            viewer, _document_id(input.document_id), approved=input.approved, opinion=input.opinion))

    @strawberry.mutation(
        extensions=signed_in(), description="The secretariat distributes it (分发): each recipient gets a receipt task."
    )
    def distribute_document(self, info: Info, input: NoteInput) -> OfficialDocumentPayload:
        return _step(info, lambda docs, viewer: docs.distribute(viewer, _document_id(input.document_id), note=input.note))

    @strawberry.mutation(extensions=signed_in(), description="Acknowledge receipt (签收) for your department.")
    def acknowledge_document(self, info: Info, input: NoteInput) -> OfficialDocumentPayload:
        return _step(info, lambda docs, viewer: docs.acknowledge(viewer, _document_id(input.document_id), note=input.note))

    @strawberry.mutation(
        extensions=roles(Role.OFFICIAL),
        description="Register an incoming document (收文登记, the secretariat): it gets its registration number and "
        "goes to proposed handling.",
    )
    def register_incoming_document(self, info: Info, input: RegisterIncomingInput) -> OfficialDocumentPayload:
        return _step(info, lambda docs, viewer: docs.register_incoming(
            viewer, title=input.title, source_organ=input.source_organ, received_on=input.received_on,
            source_number=input.source_number, urgency=Urgency(input.urgency),
        ))

    @strawberry.mutation(extensions=signed_in(), description="Propose how to handle it (拟办) and who instructs it.")
    def propose_document_handling(self, info: Info, input: ProposeInput) -> OfficialDocumentPayload:
        return _step(info, lambda docs, viewer: docs.propose(
            viewer, _document_id(input.document_id), proposal=input.proposal, leader_id=input.leader_id,
            handling_department=input.handling_department,
        ))

    @strawberry.mutation(
        extensions=signed_in(),
        description="The leader's instruction (批示); with `supervision` it also becomes a supervision item (督办) in "
        "the same step. Bad supervision input refuses the whole step (fields named supervision.*).",
    )
    def instruct_document(self, info: Info, input: InstructInput) -> OfficialDocumentPayload:
        return _step(info, lambda docs, viewer: docs.instruct(
            viewer, _document_id(input.document_id), instruction=input.instruction,
            handling_department=input.handling_department,
            supervise=input.supervision.domain() if input.supervision else None,
        ))

    @strawberry.mutation(extensions=signed_in(), description="The handling department reports the result (办理).")
    def report_document_handled(self, info: Info, input: HandledInput) -> OfficialDocumentPayload:
        return _step(info, lambda docs, viewer: docs.handle(viewer, _document_id(input.document_id), result=input.result))

    @strawberry.mutation(extensions=signed_in(), description="File it (归档) with a retention period.")
    def file_document(self, info: Info, input: FileInput) -> OfficialDocumentPayload:
        return _step(info, lambda docs, viewer: docs.file(
            viewer, _document_id(input.document_id), retention=Retention(input.retention), archive_ref=input.archive_ref))

    @strawberry.mutation(
        extensions=signed_in(),
        description="A presigned PUT for one attachment (participants holding one of its tasks, or its drafter, while "
        "it is open). Upload, then confirmDocumentAttachment.",
    )
    def request_document_attachment_upload(self, info: Info, input: UploadInput) -> FileUploadPayload:
        return mutate(
            lambda: office(info).documents.request_upload(
                info.context.require_principal(), _document_id(input.document_id), file_name=input.file_name,
                content_type=input.content_type, size=input.size,
            ),
            FileUploadType.of,
        )

    @strawberry.mutation(
        extensions=signed_in(),
        description="Confirm an upload: the file is checked against the declared size and type (and deleted if it "
        "does not match).",
    )
    def confirm_document_attachment(self, info: Info, input: AttachmentInput) -> DocumentAttachmentPayload:
        return mutate(
            lambda: office(info).documents.confirm_upload(
                info.context.require_principal(), _document_id(input.document_id), str(input.attachment_id)),
            AttachmentType.of,
        )

    @strawberry.mutation(
        extensions=signed_in(),
        description="A download link for one attachment, for the document's participants only. Audited: say why "
        "in the X-Purpose header.",
    )
    def request_document_attachment_download(self, info: Info, input: AttachmentInput) -> FileDownloadPayload:
        ctx = info.context
        return mutate(
            lambda: office(info).documents.download(
                ctx.require_principal(), _document_id(input.document_id), str(input.attachment_id), purpose=ctx.purpose),
            FileDownloadType.of,
        )
