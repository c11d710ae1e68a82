"""公文 Official documents on the workflow engine: outgoing (发文) and incoming (收文), numbers, attachments.

The workflows are bpmn/outgoing.bpmn, bpmn/receipt.bpmn (one per recipient of a distributed
document) and bpmn/incoming.bpmn. Each step has a method here that checks its input, completes the
caller's open task through the engine (which checks assignment and the form again) and returns the
document. A task completed elsewhere (e.g. the engine's own completeTask from an inbox) has the
same effect: the service follows every instance through `on_change` and keeps the document in step
(status, participants, the number once signed, receipts once distributed, what was decided).

Who may do what:
  draft                 officials on the organisation chart (the drafter)
  register incoming     members of the secretariat (办公室)
  each step             whoever the step's task is assigned to (the engine decides)
  read a document       its participants (everyone who has held a task of it, the drafter or
                        registrar, the recipients once it is distributed); auditors
  attachments           participants only (not auditors): upload while the document is open, by
                        whoever holds one of its tasks or drafted/registered it; download always
"""

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

from sunflower.audit.models import AuditAction, AuditEvent
from sunflower.auth.principals import SYSTEM, Principal, PrincipalKind, Role
from sunflower.common.clock import Clock
from sunflower.common.cursors import Page
from sunflower.common.errors import (
    DomainError,
    FieldProblem,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from sunflower.common.ids import new_id
from sunflower.office.calendar import WorkCalendar
from sunflower.office.documents.models import (
    INCOMING_STATUS,
    OUTGOING_STATUS,
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
    check_file,
    step_of,
)
from sunflower.office.documents.numbering import Numbering, check_series
from sunflower.office.documents.repository import DocumentRepository
from sunflower.office.documents.storage import OfficeFiles
from sunflower.office.engine.models import (
    Assignee,
    AssigneeKind,
    Definition,
    Instance,
    InstanceStatus,
    OpenTask,
    TimelineKind,
)
from sunflower.office.engine.service import WorkflowService
from sunflower.office.org import OrgService
from sunflower.office.supervision.models import SourceKind
from sunflower.office.supervision.service import SupervisionService

logger = logging.getLogger(__name__)

OUTGOING = "outgoing_document"
INCOMING = "incoming_document"
RECEIPT = "document_receipt"
_BPMN = Path(__file__).parent / "bpmn"
DIAGRAMS = {OUTGOING: _BPMN / "outgoing.bpmn", RECEIPT: _BPMN / "receipt.bpmn", INCOMING: _BPMN / "incoming.bpmn"}

DEFAULT_ORGAN_CODES = ("平政发", "平政办发", "平政函", "平政办函")
MAX_COUNTERSIGN = 6  # countersigning slots drawn in outgoing.bpmn
MAX_RECIPIENTS = 200
MAX_TITLE, MAX_TEXT, MAX_SHORT = 200, 2000, 100
MAX_ATTACHMENTS = 50
URL_TTL_S = 900
_DRAFTERS = (Role.OFFICIAL, Role.ADMIN)
_AUDITORS = (Role.AUDITOR,)
_OUTGOING_ORDER = ("draft", "review", "countersign", "sign", "distribute")
_INCOMING_ORDER = ("propose", "instruct", "handle", "file")
_INCOMING_FIELDS = ("proposal", "leader_id", "instruction", "handling_department", "supervision_item_id", "result",
                    "archive_ref")


class DocumentService:
    def __init__(
        self,
        repository: DocumentRepository,
        workflows: WorkflowService,
        org: OrgService,
        supervision: SupervisionService,
        files: OfficeFiles,
        calendar: WorkCalendar,
        clock: Clock,
        *,
        secretariat_department: str = "general-office",
        organ_codes: Sequence[str] = DEFAULT_ORGAN_CODES,
        incoming_series: str = "平政收",
        audit=None,  # sunflower.audit.service.AuditService: attachment downloads are recorded when given
    ) -> None:
        self._repo = repository
        self._workflows = workflows
        self._org = org
        self._supervision = supervision
        self._files = files
        self._calendar = calendar
        self._clock = clock
        self._audit = audit
        self.secretariat_department = secretariat_department
        self.organ_codes = tuple(check_series(c) for c in organ_codes)
        self.incoming_series = check_series(incoming_series, "incomingSeries")
        self.numbering = Numbering(repository, clock, str(calendar.zone))
        workflows.on_change(OUTGOING, self._follow)
        workflows.on_change(INCOMING, self._follow)
        workflows.on_change(RECEIPT, self._follow_receipt)

    def install(self, actor: Principal) -> list[Definition]:
        """Deploy the three diagrams, each unless its latest deployed version is the same diagram."""
        deployed = []
        for key, path in DIAGRAMS.items():
            raw = path.read_bytes()
            try:
                current = self._workflows.definition(SYSTEM, key)
            except NotFound:
                current = None
            if current and current.bpmn_sha256 == hashlib.sha256(raw).hexdigest():
                deployed.append(current)
            else:
                deployed.append(self._workflows.deploy(actor, raw))
        return deployed

    # --- outgoing (发文) -----------------------------------------------------------------------

    def draft_outgoing(
        self,
        actor: Principal,
        *,
        title: str,
        organ_code: str,
        signer_id: str,
        recipients: Sequence[str],
        countersign_departments: Sequence[str] = (),
        urgency: Urgency = Urgency.NORMAL,
    ) -> Document:
        """Start an outgoing document: the drafter's `draft` task opens (attach files, then submit)."""
        if not actor.has_any(*_DRAFTERS) or actor.kind is not PrincipalKind.PERSON:
            raise PermissionDenied("only officials draft official documents")
        problems: list[FieldProblem] = []
        title = _text(title, "title", MAX_TITLE, problems)
        if organ_code not in self.organ_codes:
            problems.append(FieldProblem("organCode", f"must be one of {', '.join(self.organ_codes)}"))
        countersign = tuple(dict.fromkeys(d.strip() for d in countersign_departments if d and d.strip()))
        recipients = tuple(dict.fromkeys(d.strip() for d in recipients if d and d.strip()))
        if len(countersign) > MAX_COUNTERSIGN:
            problems.append(FieldProblem("countersignDepartments", f"at most {MAX_COUNTERSIGN} departments countersign"))
        if not recipients:
            problems.append(FieldProblem("recipients", "name at least one recipient department"))
        elif len(recipients) > MAX_RECIPIENTS:
            problems.append(FieldProblem("recipients", f"at most {MAX_RECIPIENTS} departments"))
        chart = self._org.chart(SYSTEM)
        problems += [FieldProblem("countersignDepartments", f"no department {d!r} in the organisation chart")
                     for d in countersign if d not in chart.departments]
        problems += [FieldProblem("recipients", f"no department {d!r} in the organisation chart")
                     for d in recipients if d not in chart.departments]
        staff = self._org.staff_many(SYSTEM, [actor.id, signer_id])
        if actor.id not in staff:
            problems.append(FieldProblem("drafter", f"you ({actor.id}) are not a member of staff in the organisation chart"))
        if signer_id not in staff:
            problems.append(FieldProblem("signerId", f"no member of staff {signer_id!r}"))
        self._require_secretariat(chart, problems)
        _raise(problems)

        now = self._clock()
        document_id = new_id()
        data = {
            "document_id": document_id,
            "title": title,
            "drafter_id": actor.id,
            "secretariat_department": self.secretariat_department,
            "countersign_departments": list(countersign),
            "signer_id": signer_id,
        }
        instance = self._workflows.start(actor, OUTGOING, data, business_key=document_id)
        document = Document(
            id=document_id, kind=DocumentKind.OUTGOING, title=title, status=DocumentStatus.DRAFTING, urgency=urgency,
            created_by=actor.audit_name, created_at=now, updated_at=now, instance_id=instance.id,
            participants=frozenset({f"person:{actor.id}"}) | _task_keys(instance), organ_code=organ_code,
            drafter_id=actor.id, drafter_department=staff[actor.id].department_id,
            countersign_departments=countersign, signer_id=signer_id, recipients=recipients,
        )
        self._repo.add_participants(document, document.participants)
        self._repo.save(document, None)
        return document

    def submit_draft(self, actor: Principal, document_id: str, *, note: str | None = None) -> Document:
        return self._step(actor, document_id, DocumentKind.OUTGOING, "draft", _form(note=_note(note)))

    def review(self, actor: Principal, document_id: str, *, approved: bool, opinion: str | None = None) -> Document:
        """核稿: approved goes on to countersigning, otherwise back to the drafter."""
        return self._step(actor, document_id, DocumentKind.OUTGOING, "review",
                          _form(approved=bool(approved), opinion=_note(opinion, "opinion")))

    def countersign(self, actor: Principal, document_id: str, *, agree: bool, opinion: str | None = None) -> Document:
        """会签 for the caller's department (its own branch; the other departments sign at the same time)."""
        return self._step(actor, document_id, DocumentKind.OUTGOING, "countersign",
                          _form(agree=bool(agree), opinion=_note(opinion, "opinion")))

    def sign_off(self, actor: Principal, document_id: str, *, approved: bool, opinion: str | None = None) -> Document:
        """签发: signed, the document gets its number at once; otherwise back to the drafter."""
        return self._step(actor, document_id, DocumentKind.OUTGOING, "sign",
                          _form(approved=bool(approved), opinion=_note(opinion, "opinion")))

    def distribute(self, actor: Principal, document_id: str, *, note: str | None = None) -> Document:
        """分发: the secretariat sends it out; each recipient department gets a receipt task."""
        document = self._document(document_id, DocumentKind.OUTGOING)
        note = _note(note)
        task = self._open_task(actor, document, "distribute")
        if document.number is None:  # numbered on sign-off; this catches a numbering that failed then
            document = self._ensure_number(document)
        instance = self._workflows.complete_task(actor, document.instance_id, task.id, _form(note=note))
        return self._settle(instance)

    def acknowledge(self, actor: Principal, document_id: str, *, note: str | None = None) -> Document:
        """签收 for the caller's department."""
        document = self._document(document_id, DocumentKind.OUTGOING)
        note = _note(note)
        if document.status not in (DocumentStatus.DISTRIBUTED, DocumentStatus.COMPLETED):
            raise InvalidState(f"document {document_id} has not been distributed (it is {document.status.value})")
        mine = {k.id for k in self._org.keys_of(actor) if k.kind is AssigneeKind.DEPARTMENT}
        receipts = [r for r in document.receipts if r.department_id in mine]
        if not receipts:
            raise PermissionDenied("only the recipient departments acknowledge receipt of this document")
        pending = [r for r in receipts if r.acknowledged_at is None]
        if not pending:
            r = receipts[0]
            raise InvalidState(f"{r.department_id} acknowledged receipt already ({r.acknowledged_by}, {r.acknowledged_at:%Y-%m-%d %H:%M} UTC)")
        receipt = pending[0]
        if receipt.instance_id:
            instance = self._workflows.instance(SYSTEM, receipt.instance_id)
            task = next((t for t in instance.open_tasks if t.element_id == "acknowledge"), None)
            if task is not None:
                self._workflows.complete_task(actor, receipt.instance_id, task.id, _form(note=note))
        # the receipt's instance told us already (unless it could not): recording it again changes nothing
        return self._acknowledged(document.id, receipt.department_id, actor.audit_name, self._clock(), note)

    # --- incoming (收文) -----------------------------------------------------------------------

    def register_incoming(
        self,
        actor: Principal,
        *,
        title: str,
        source_organ: str,
        received_on: date,
        source_number: str | None = None,
        urgency: Urgency = Urgency.NORMAL,
    ) -> Document:
        """登记: record a received document, give it a registration number and start its handling."""
        if actor.kind is not PrincipalKind.SYSTEM and Assignee(AssigneeKind.DEPARTMENT, self.secretariat_department) not in self._org.keys_of(actor):
            raise PermissionDenied(f"only the secretariat ({self.secretariat_department}) registers incoming documents")
        problems: list[FieldProblem] = []
        title = _text(title, "title", MAX_TITLE, problems)
        source_organ = _text(source_organ, "sourceOrgan", MAX_SHORT, problems)
        source_number = (source_number or "").strip() or None
        if source_number and len(source_number) > MAX_SHORT:
            problems.append(FieldProblem("sourceNumber", f"must be at most {MAX_SHORT} characters"))
        today = self._calendar.local_date(self._clock())
        if received_on > today:
            problems.append(FieldProblem("receivedOn", f"is in the future (today is {today.isoformat()} in the district)"))
        self._require_secretariat(self._org.chart(SYSTEM), problems)
        _raise(problems)

        now = self._clock()
        keys = frozenset({f"person:{actor.id}", f"department:{self.secretariat_department}"})
        document = Document(
            id=new_id(), kind=DocumentKind.INCOMING, title=title, status=DocumentStatus.REGISTERED, urgency=urgency,
            created_by=actor.audit_name, created_at=now, updated_at=now, participants=keys,
            source_organ=source_organ, source_number=source_number, received_on=received_on,
        )
        self._repo.add_participants(document, keys)
        self._repo.save(document, None)
        document = self._ensure_number(document)
        data = {
            "document_id": document.id,
            "title": title,
            "registration_number": document.registration_number.text,
            "registry_department": self.secretariat_department,
        }
        instance = self._workflows.start(actor, INCOMING, data, business_key=document.id)
        return self._settle(instance)  # links the instance and moves the document to its first step

    def propose(self, actor: Principal, document_id: str, *, proposal: str, leader_id: str, handling_department: str) -> Document:
        """拟办: how to handle it, which leader instructs and which department handles."""
        problems: list[FieldProblem] = []
        proposal = _text(proposal, "proposal", MAX_TEXT, problems)
        if leader_id not in self._org.staff_many(SYSTEM, [leader_id]):
            problems.append(FieldProblem("leaderId", f"no member of staff {leader_id!r}"))
        if handling_department not in self._org.chart(SYSTEM).departments:
            problems.append(FieldProblem("handlingDepartment", f"no department {handling_department!r} in the organisation chart"))
        _raise(problems)
        return self._step(actor, document_id, DocumentKind.INCOMING, "propose",
                          {"proposal": proposal, "leader_id": leader_id, "handling_department": handling_department})

    def instruct(
        self,
        actor: Principal,
        document_id: str,
        *,
        instruction: str,
        handling_department: str | None = None,
        supervise: SupervisionRequest | None = None,
    ) -> Document:
        """批示. With `supervise`, the instruction also becomes a supervision item (督办), in the same step.

        The item is created first (its own checks refuse bad input before anything is written) and
        linked to the document before the task is completed, so a retry after a failure reuses it.
        """
        document = self._document(document_id, DocumentKind.INCOMING)
        problems: list[FieldProblem] = []
        instruction = _text(instruction, "instruction", MAX_TEXT, problems)
        handling = (handling_department or document.handling_department or "").strip()
        if handling not in self._org.chart(SYSTEM).departments:
            problems.append(FieldProblem("handlingDepartment", f"no department {handling!r} in the organisation chart"))
        _raise(problems)
        task = self._open_task(actor, document, "instruct")
        item_id = document.supervision_item_id
        if supervise is not None and item_id is None:
            try:
                item = self._supervision.create(
                    actor,
                    title=(supervise.title or document.title).strip(),
                    source=SourceKind.LEADER_INSTRUCTION,
                    source_ref=document.registration_number.text if document.registration_number else document.id,
                    leader_id=actor.id,
                    responsible_department=supervise.responsible_department or handling,
                    assisting_departments=supervise.assisting_departments,
                    deadline=supervise.deadline,
                    detail=instruction,
                )
            except ValidationFailed as exc:
                raise _prefixed(exc, "supervision") from None
            item_id = item.id
            self._set(document.id, lambda d: replace(d, supervision_item_id=d.supervision_item_id or item.id))
        data = {"instruction": instruction, "handling_department": handling}
        if supervise is not None and item_id:
            data["supervision_item_id"] = item_id
        instance = self._workflows.complete_task(actor, document.instance_id, task.id, data)
        return self._settle(instance)

    def handle(self, actor: Principal, document_id: str, *, result: str) -> Document:
        """办理: the handling department reports the result."""
        problems: list[FieldProblem] = []
        result = _text(result, "result", 4000, problems)
        _raise(problems)
        return self._step(actor, document_id, DocumentKind.INCOMING, "handle", {"result": result})

    def file(self, actor: Principal, document_id: str, *, retention: Retention, archive_ref: str | None = None) -> Document:
        """归档 with a retention period."""
        archive_ref = (archive_ref or "").strip() or None
        if archive_ref and len(archive_ref) > MAX_SHORT:
            raise ValidationFailed.on("archiveRef", f"must be at most {MAX_SHORT} characters")
        return self._step(actor, document_id, DocumentKind.INCOMING, "file",
                          _form(retention=Retention(retention).value, archive_ref=archive_ref))

    # --- reading -------------------------------------------------------------------------------

    def get(self, viewer: Principal, document_id: str) -> Document:
        document = self._repo.get(document_id)
        if not self._may_read(viewer, document):
            raise PermissionDenied(f"you take no part in official document {document_id}")
        return document

    def get_many(self, viewer: Principal, document_ids: Iterable[str]) -> dict[str, Document]:
        """For dataloaders: the ones the viewer may see, by id (one batch read)."""
        found = self._repo.get_many(document_ids)
        return {i: d for i, d in found.items() if self._may_read(viewer, d, fresh=False)}

    def documents(self, viewer: Principal, kind: DocumentKind, *, limit: int = 20, start: dict | None = None) -> Page[Document]:
        """The documents of `kind` the viewer takes part in (auditors: all of them), newest first."""
        if viewer.kind is PrincipalKind.SYSTEM or viewer.has_any(*_AUDITORS):
            return self._repo.page_all(kind, limit=limit, start=start)
        keys = [k.key for k in self._org.keys_of(viewer) if k.kind is not AssigneeKind.ROLE]
        page = self._repo.page_for(keys, kind, limit=limit, start=start)
        found = self._repo.get_many(page.items)
        rows = [(found[i], key) for i, key in zip(page.items, page.item_keys, strict=True)
                if i in found and self._may_read(viewer, found[i], fresh=False)]
        return Page([d for d, _ in rows], page.next_key, [k for _, k in rows])

    def history(self, viewer: Principal, document_id: str) -> list[Opinion]:
        """Every completed step, oldest first: who, when, approved or not, their opinion; then the receipts."""
        document = self.get(viewer, document_id)
        opinions: list[Opinion] = []
        start = None
        while document.instance_id:
            page = self._workflows.timeline(SYSTEM, document.instance_id, limit=100, start=start)
            opinions += [_opinion(e) for e in page.items if e.kind is TimelineKind.TASK_COMPLETED]
            if not page.next_key:
                break
            start = page.next_key
        # receipts from the document itself: one read however many recipients there are
        opinions += [Opinion("acknowledge", "签收 Acknowledge receipt", r.acknowledged_by or "", r.acknowledged_at, None,
                             r.note, {"department_id": r.department_id})
                     for r in document.receipts if r.acknowledged_at]
        return sorted(opinions, key=lambda o: o.at)

    def open_steps(self, viewer: Principal, document: Document) -> list[OpenTask]:
        """The document's open tasks (the document was read with permission)."""
        if not document.instance_id:
            return []
        return list(self._workflows.instance(SYSTEM, document.instance_id).open_tasks)

    def register(self, viewer: Principal, series: str, year: int, *, limit: int = 20, start: dict | None = None) -> Page[tuple[int, str]]:
        """The numbering register (登记簿) of a series and year, in number order: secretariat and auditors."""
        keys = self._org.keys_of(viewer)
        if not (viewer.kind is PrincipalKind.SYSTEM or viewer.has_any(*_AUDITORS)
                or Assignee(AssigneeKind.DEPARTMENT, self.secretariat_department) in keys):
            raise PermissionDenied("only the secretariat and auditors read the numbering register")
        return self._repo.register(check_series(series, "series"), year, limit=limit, start=start)

    # --- attachments ---------------------------------------------------------------------------

    def request_upload(self, actor: Principal, document_id: str, *, file_name: str, content_type: str, size: int) -> UploadTicket:
        """A presigned PUT for one file (exactly `size` bytes of `content_type`), valid 15 minutes.

        Upload it, then confirm it with `confirm_upload`; until then nobody can download it.
        """
        document = self._repo.get(document_id)
        self._require_participant(actor, document)
        if document.finished:
            raise InvalidState(f"document {document_id} is {document.status.value}: its attachments are final")
        if not self._may_upload(actor, document):
            raise PermissionDenied("attachments are added by whoever holds one of the document's tasks, or its drafter")
        name = check_file(file_name, content_type, size)
        if len(self._repo.attachments(document_id)) >= MAX_ATTACHMENTS:
            raise InvalidState(f"a document has at most {MAX_ATTACHMENTS} attachments")
        now = self._clock()
        attachment_id = new_id()
        key = f"documents/{document_id}/{attachment_id}/{name}"
        content_type = content_type.strip().lower()
        url, headers = self._files.upload_url(key, content_type=content_type, size=size, expires_s=URL_TTL_S)
        self._repo.add_attachment(Attachment(attachment_id, document_id, name, content_type, size, key,
                                             actor.audit_name, now))
        return UploadTicket(attachment_id, key, url, "PUT", headers, now + timedelta(seconds=URL_TTL_S))

    def confirm_upload(self, actor: Principal, document_id: str, attachment_id: str) -> Attachment:
        """Check the uploaded file against what was declared; a file that does not match is deleted."""
        attachment = self._repo.attachment(document_id, attachment_id)
        if attachment.uploaded_by != actor.audit_name:
            raise PermissionDenied("only whoever asked to upload a file confirms it")
        if attachment.status is AttachmentStatus.READY:
            return attachment
        stored = self._files.head(attachment.key)
        if stored is None:
            raise InvalidState("the file has not been uploaded yet: PUT it to the upload URL first")
        problem = _mismatch(attachment, stored.size, stored.content_type)
        if problem:
            self._files.delete(attachment.key)
            raise InvalidState(f"{problem}; the upload was deleted, ask for a new upload URL")
        confirmed = replace(attachment, status=AttachmentStatus.READY, confirmed_at=self._clock())
        self._repo.confirm_attachment(confirmed)
        return confirmed

    def attachments(self, viewer: Principal, document_id: str) -> list[Attachment]:
        document = self._repo.get(document_id)
        self._require_participant(viewer, document)
        return self._repo.attachments(document_id)

    def download(self, viewer: Principal, document_id: str, attachment_id: str, *, purpose: str = "") -> DownloadTicket:
        """A presigned GET of one attachment, valid 15 minutes, for participants only (audited)."""
        document = self._repo.get(document_id)
        self._require_participant(viewer, document)
        attachment = self._repo.attachment(document_id, attachment_id)
        if attachment.status is not AttachmentStatus.READY:
            raise InvalidState(f"attachment {attachment_id} has not been uploaded and confirmed yet")
        if self._audit is not None:
            self._audit.record(AuditEvent.by(
                viewer, AuditAction.EXPORT, "document_attachment", f"{document_id}/{attachment_id}",
                purpose.strip() or "read an official document's attachment",
            ))
        url = self._files.download_url(attachment.key, file_name=attachment.file_name,
                                       content_type=attachment.content_type, expires_s=URL_TTL_S)
        return DownloadTicket(url, attachment.file_name, self._clock() + timedelta(seconds=URL_TTL_S))

    # --- following the workflows ---------------------------------------------------------------

    def _follow(self, before: Instance | None, after: Instance) -> None:
        if before is None or not after.business_key:
            return  # a start: the method that started it writes the document itself
        try:
            self._settle(after)
        except NotFound:
            logger.warning("instance %s names no document %s", after.id, after.business_key)

    def _settle(self, instance: Instance) -> Document:
        """Bring the document in step with its instance: status, participants, what was decided,
        its number once signed, its receipts once distributed. Idempotent."""
        document_id = instance.business_key
        keys = _task_keys(instance)
        now = self._clock()
        completed = instance.status is InstanceStatus.COMPLETED
        steps = {step_of(t.element_id) for t in instance.open_tasks}

        def apply(d: Document) -> Document:
            changed = replace(d, participants=d.participants | keys, instance_id=d.instance_id or instance.id)
            if instance.id != changed.instance_id or instance.version < d.instance_version:
                return changed  # an older change that arrives late (e.g. of two parallel countersignatures)
            changed = replace(changed, instance_version=instance.version)
            if d.kind is DocumentKind.OUTGOING:
                status = next((OUTGOING_STATUS[s] for s in _OUTGOING_ORDER if s in steps), None)
                if completed:
                    status = d.status if d.status in (DocumentStatus.DISTRIBUTED, DocumentStatus.COMPLETED) else DocumentStatus.DISTRIBUTING
                signed = completed or "distribute" in steps
                return replace(changed, status=status or d.status,
                               signed_at=d.signed_at or (now if signed else None))
            status = next((INCOMING_STATUS[s] for s in _INCOMING_ORDER if s in steps), None)
            fields = {f: instance.data[f] for f in _INCOMING_FIELDS if instance.data.get(f) is not None}
            if instance.data.get("retention"):
                fields["retention"] = Retention(instance.data["retention"])
            if completed:
                return replace(changed, status=DocumentStatus.FILED, completed_at=d.completed_at or instance.completed_at, **fields)
            return replace(changed, status=status or d.status, **fields)

        document, _ = self._set(document_id, apply)
        if document.kind is DocumentKind.OUTGOING:
            if document.signed_at and document.number is None:
                try:
                    document = self._ensure_number(document)
                except DomainError:  # distribute() numbers it if this failed
                    logger.exception("numbering document %s failed", document.id)
            if completed and not document.receipts and document.number is not None:
                document = self._send(document)
        return document

    def _ensure_number(self, document: Document) -> Document:
        if document.kind is DocumentKind.OUTGOING:
            series, current = document.organ_code, document.number
        else:
            series, current = self.incoming_series, document.registration_number
        if current is None:
            self.numbering.assign(document.id, series)
            document = self._repo.get(document.id)
        return document

    def _send(self, document: Document) -> Document:
        """Distributed: one receipt per recipient (the one who records that first starts their workflows)."""
        now = self._clock()

        def claim(d: Document) -> Document:
            if d.receipts:
                return d
            keys = frozenset(f"department:{r}" for r in d.recipients)
            return replace(d, status=DocumentStatus.DISTRIBUTED, distributed_at=now, participants=d.participants | keys,
                           receipts=tuple(Receipt(r) for r in d.recipients))

        document, mine = self._set(document.id, claim)
        if not mine:
            return document
        starts = [({"document_id": document.id, "title": document.title, "document_number": document.number.text,
                    "recipient_department": r}, document.id) for r in document.recipients]
        started = self._workflows.start_many(SYSTEM, RECEIPT, starts)
        ids = {r: i.id for r, i in zip(document.recipients, started, strict=True)}
        document, _ = self._set(document.id, lambda d: replace(
            d, receipts=tuple(replace(r, instance_id=r.instance_id or ids.get(r.department_id)) for r in d.receipts)))
        return document

    def _follow_receipt(self, before: Instance | None, after: Instance) -> None:
        if before is None or after.status is not InstanceStatus.COMPLETED or before.status is InstanceStatus.COMPLETED:
            return
        department = after.data.get("recipient_department")
        entries = self._workflows.timeline(SYSTEM, after.id, limit=20, start=None, newest_first=True).items
        done = next((e for e in entries if e.kind is TimelineKind.TASK_COMPLETED), None)
        try:
            self._acknowledged(after.business_key, department, done.actor if done else "system:sunflower",
                               done.at if done else after.updated_at, (done.data.get("note") if done else None))
        except NotFound:
            logger.warning("receipt %s names no document %s", after.id, after.business_key)

    def _acknowledged(self, document_id: str, department: str, by: str, at: datetime, note: str | None) -> Document:
        def apply(d: Document) -> Document:
            receipts = tuple(
                replace(r, acknowledged_at=at, acknowledged_by=by, note=note)
                if r.department_id == department and r.acknowledged_at is None else r
                for r in d.receipts
            )
            done = bool(receipts) and all(r.acknowledged_at for r in receipts)
            return replace(d, receipts=receipts, status=DocumentStatus.COMPLETED if done else d.status,
                           completed_at=d.completed_at or (at if done else None))

        return self._set(document_id, apply)[0]

    # --- helpers -------------------------------------------------------------------------------

    def _step(self, actor: Principal, document_id: str, kind: DocumentKind, step: str, data: dict) -> Document:
        document = self._document(document_id, kind)
        task = self._open_task(actor, document, step)
        instance = self._workflows.complete_task(actor, document.instance_id, task.id, data)
        return self._settle(instance)

    def _document(self, document_id: str, kind: DocumentKind) -> Document:
        document = self._repo.get(document_id)
        if document.kind is not kind:
            raise InvalidState(f"document {document_id} is an {document.kind.value} document")
        if not document.instance_id:
            raise InvalidState(f"document {document_id} has no workflow yet")
        return document

    def _open_task(self, actor: Principal, document: Document, step: str) -> OpenTask:
        instance = self._workflows.instance(SYSTEM, document.instance_id)
        tasks = [t for t in instance.open_tasks if step_of(t.element_id) == step]
        if not tasks:
            raise InvalidState(f"document {document.id} is {document.status.value}: it has no open '{step}' step")
        keys = set(self._org.keys_of(actor))
        mine = [t for t in tasks if not keys.isdisjoint(t.assignees)]
        if not mine:
            done = [k.id for k in keys if k.kind is AssigneeKind.DEPARTMENT and k.id in document.countersign_departments]
            if step == "countersign" and done:
                raise InvalidState(f"{done[0]} has countersigned document {document.id} already")
            holders = ", ".join(sorted({a.key for t in tasks for a in t.assignees}))
            raise PermissionDenied(f"the '{step}' step of document {document.id} is assigned to {holders}, not to you")
        return mine[0]

    def _set(self, document_id: str, change: Callable[[Document], Document]) -> tuple[Document, bool]:
        """Apply `change` to the current document with optimistic locking; (document, whether it changed)."""
        for _ in range(8):
            current = self._repo.get(document_id)
            changed = change(current)
            if changed == current:
                return current, False
            changed = replace(changed, version=current.version + 1, updated_at=self._clock())
            added = changed.participants - current.participants
            if added:  # the index first: an entry for a change that then fails is filtered out on read
                self._repo.add_participants(changed, added)
            try:
                self._repo.save(changed, current.version)
                return changed, True
            except InvalidState:
                continue
        raise InvalidState(f"official document {document_id} is changing too often right now; try again")

    def _require_secretariat(self, chart, problems: list[FieldProblem]) -> None:
        if self.secretariat_department not in chart.departments:
            problems.append(FieldProblem("secretariat", f"the secretariat {self.secretariat_department!r} is not in the organisation chart"))

    def _visible_keys(self, document: Document, fresh: bool) -> set[str]:
        keys = set(document.participants)
        if fresh and document.instance_id and not document.finished:
            # an assignee of a change whose follow-up has not reached the document yet
            keys |= _task_keys(self._workflows.instance(SYSTEM, document.instance_id))
        return keys

    def _is_participant(self, viewer: Principal, document: Document, fresh: bool = True) -> bool:
        if viewer.kind is PrincipalKind.SYSTEM:
            return True
        mine = {k.key for k in self._org.keys_of(viewer) if k.kind is not AssigneeKind.ROLE}
        if mine & document.participants:
            return True
        return bool(mine & self._visible_keys(document, fresh))

    def _may_read(self, viewer: Principal, document: Document, fresh: bool = True) -> bool:
        return viewer.has_any(*_AUDITORS) or self._is_participant(viewer, document, fresh)

    def _require_participant(self, viewer: Principal, document: Document) -> None:
        if not self._is_participant(viewer, document):
            raise PermissionDenied(f"only the participants of official document {document.id} see its attachments")

    def _may_upload(self, actor: Principal, document: Document) -> bool:
        if actor.audit_name == document.created_by:
            return True
        if not document.instance_id:
            return False
        keys = set(self._org.keys_of(actor))
        instance = self._workflows.instance(SYSTEM, document.instance_id)
        return any(not keys.isdisjoint(t.assignees) for t in instance.open_tasks)


# --- module helpers -------------------------------------------------------------------------------


def _task_keys(instance: Instance) -> frozenset[str]:
    return frozenset(a.key for t in instance.open_tasks for a in t.assignees if a.kind is not AssigneeKind.ROLE)


def _text(value: str | None, field: str, limit: int, problems: list[FieldProblem]) -> str:
    value = (value or "").strip()
    if not value or len(value) > limit:
        problems.append(FieldProblem(field, f"is required and at most {limit} characters"))
    return value


def _note(value: str | None, field: str = "note") -> str | None:
    value = (value or "").strip() or None
    if value and len(value) > MAX_TEXT:
        raise ValidationFailed.on(field, f"must be at most {MAX_TEXT} characters")
    return value


def _form(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def _raise(problems: list[FieldProblem]) -> None:
    if problems:
        raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), problems=tuple(problems))


def _prefixed(exc: ValidationFailed, prefix: str) -> ValidationFailed:
    problems = tuple(FieldProblem(f"{prefix}.{p.field}", p.message) for p in exc.problems)
    return ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems) or exc.message, problems=problems)


def _mismatch(attachment: Attachment, size: int, content_type: str) -> str | None:
    if size != attachment.size:
        return f"the uploaded file has {size} bytes, not the {attachment.size} declared"
    if content_type.split(";")[0].strip().lower() != attachment.content_type:
        return f"the uploaded file is {content_type or 'of no type'}, not the {attachment.content_type} declared"
    return None


def _opinion(entry) -> Opinion:
    data = dict(entry.data or {})
    approved = data.get("approved", data.get("agree"))
    text = next((data[k] for k in ("opinion", "proposal", "instruction", "result", "note") if data.get(k)), None)
    return Opinion(step_of(entry.element_id or ""), entry.task_name or "", entry.actor, entry.at,
                   approved if isinstance(approved, bool) else None, text or entry.comment, data)

