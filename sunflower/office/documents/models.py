"""公文 Official documents, outgoing (发文) and incoming (收文): records, numbers, attachments (pure rules)."""

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from sunflower.common.errors import FieldProblem, ValidationFailed


class DocumentKind(StrEnum):
    OUTGOING = "outgoing"  # 发文
    INCOMING = "incoming"  # 收文


class DocumentStatus(StrEnum):
    # outgoing
    DRAFTING = "drafting"  # 拟稿
    IN_REVIEW = "in_review"  # 核稿
    COUNTERSIGNING = "countersigning"  # 会签
    SIGNING = "signing"  # 签发
    DISTRIBUTING = "distributing"  # numbered, waiting for the secretariat to send it out
    DISTRIBUTED = "distributed"  # sent out; waiting for every recipient's receipt
    COMPLETED = "completed"  # every recipient has acknowledged receipt
    # incoming
    REGISTERED = "registered"  # 登记 (only until its workflow has started)
    PROPOSING = "proposing"  # 拟办
    INSTRUCTING = "instructing"  # 批示
    HANDLING = "handling"  # 办理
    FILING = "filing"  # 归档
    FILED = "filed"


class Urgency(StrEnum):
    NORMAL = "normal"  # 平件
    URGENT = "urgent"  # 急件
    VERY_URGENT = "very_urgent"  # 特急


class Retention(StrEnum):
    PERMANENT = "permanent"  # 永久
    YEARS_30 = "30y"  # 30 年
    YEARS_10 = "10y"  # 10 年


class AttachmentStatus(StrEnum):
    PENDING = "pending"  # an upload URL was handed out; the file has not been confirmed
    READY = "ready"  # uploaded and checked (size, type)


# What a step of a document's workflow is, by BPMN element (countersign_0..n are one step).
OUTGOING_STATUS = {
    "draft": DocumentStatus.DRAFTING,
    "review": DocumentStatus.IN_REVIEW,
    "countersign": DocumentStatus.COUNTERSIGNING,
    "sign": DocumentStatus.SIGNING,
    "distribute": DocumentStatus.DISTRIBUTING,
}
INCOMING_STATUS = {
    "propose": DocumentStatus.PROPOSING,
    "instruct": DocumentStatus.INSTRUCTING,
    "handle": DocumentStatus.HANDLING,
    "file": DocumentStatus.FILING,
}


def step_of(element_id: str) -> str:
    """`countersign_3` -> `countersign`: the parallel countersigning slots are one step."""
    return "countersign" if element_id.startswith("countersign_") else element_id


@dataclass(frozen=True, order=True)
class DocumentNumber:
    """发文字号 / 收文编号: issuing organ's code, year, and the sequence within them, e.g. 平政发〔2026〕12号."""

    series: str
    year: int
    seq: int

    @property
    def text(self) -> str:
        return f"{self.series}〔{self.year}〕{self.seq}号"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Receipt:
    """One recipient department's acknowledgement of a distributed document (签收)."""

    department_id: str
    instance_id: str | None = None  # its document_receipt workflow instance
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None  # audit name, e.g. person:w-1
    note: str | None = None


@dataclass(frozen=True)
class Document:
    id: str
    kind: DocumentKind
    title: str
    status: DocumentStatus
    urgency: Urgency
    created_by: str  # audit name
    created_at: datetime
    updated_at: datetime
    instance_id: str | None = None
    instance_version: int = 0  # the version of its instance the document last followed (never goes back)
    # assignee keys (person:…, department:…) of everyone who has held a task of its workflow,
    # plus its drafter (outgoing) or registrar (incoming): who may see it and its attachments
    participants: frozenset[str] = frozenset()
    # outgoing
    organ_code: str | None = None  # the number's series, e.g. 平政发
    drafter_id: str | None = None
    drafter_department: str | None = None
    countersign_departments: tuple[str, ...] = ()
    signer_id: str | None = None
    recipients: tuple[str, ...] = ()
    number: DocumentNumber | None = None
    signed_at: datetime | None = None
    distributed_at: datetime | None = None
    receipts: tuple[Receipt, ...] = ()
    # incoming
    source_organ: str | None = None  # 来文单位
    source_number: str | None = None  # 来文字号
    received_on: date | None = None
    registration_number: DocumentNumber | None = None  # 收文编号
    proposal: str | None = None  # 拟办意见
    leader_id: str | None = None
    instruction: str | None = None  # 批示
    handling_department: str | None = None
    supervision_item_id: str | None = None  # the 督办 item the instruction became
    result: str | None = None  # 办理结果
    retention: Retention | None = None
    archive_ref: str | None = None
    completed_at: datetime | None = None  # every receipt in (outgoing) or filed (incoming)
    version: int = 1

    def receipt(self, department_id: str) -> Receipt | None:
        return next((r for r in self.receipts if r.department_id == department_id), None)

    @property
    def finished(self) -> bool:
        return self.status in (DocumentStatus.COMPLETED, DocumentStatus.FILED)


@dataclass(frozen=True)
class Attachment:
    id: str
    document_id: str
    file_name: str
    content_type: str
    size: int  # bytes, as declared when the upload was requested (checked when confirmed)
    key: str  # the object key in the office bucket
    uploaded_by: str  # audit name
    requested_at: datetime
    status: AttachmentStatus = AttachmentStatus.PENDING
    confirmed_at: datetime | None = None


@dataclass(frozen=True)
class Opinion:
    """A completed step of a document's workflow as its history shows it (from the engine's timeline)."""

    step: str  # draft, review, countersign, sign, distribute, acknowledge, propose, instruct, handle, file
    task_name: str
    actor: str
    at: datetime
    approved: bool | None  # review and sign-off: approved; countersign: agree
    opinion: str | None
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SupervisionRequest:
    """Turn a leader's instruction or a meeting decision into a supervision item (督办) in the same step."""

    deadline: date
    responsible_department: str | None = None  # default: the handling department
    assisting_departments: tuple[str, ...] = ()
    title: str | None = None  # default: the document's title or the decision


@dataclass(frozen=True)
class UploadTicket:
    attachment_id: str
    key: str
    url: str
    method: str
    headers: dict[str, str]  # what the PUT must send, exactly (they are signed)
    expires_at: datetime


@dataclass(frozen=True)
class DownloadTicket:
    url: str
    file_name: str
    expires_at: datetime


# --- files ------------------------------------------------------------------------------------

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_FILE_NAME = 120
# What an official document or meeting material may be: 公文 are OFD (GB/T 33190) or PDF, drafts
# Word or WPS; tables, slides and scans.
CONTENT_TYPES: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "application/ofd": (".ofd",),
    "application/msword": (".doc",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
    "application/wps-office.wps": (".wps",),
    "application/vnd.ms-excel": (".xls",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx",),
    "application/vnd.ms-powerpoint": (".ppt",),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (".pptx",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "text/plain": (".txt",),
}
_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)


def safe_file_name(name: str) -> str:
    """One safe object-key segment, keeping letters of any script: `../../通知 (定稿).PDF` -> `通知_定稿.PDF`."""
    base = unicodedata.normalize("NFKC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")  # control and format characters
    cleaned = _UNSAFE.sub("_", base.strip())
    cleaned = re.sub(r"_*\._*", ".", cleaned)
    cleaned = re.sub(r"\.{2,}", ".", cleaned).strip("._-")
    if len(cleaned) > MAX_FILE_NAME:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (stem[: MAX_FILE_NAME - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else cleaned[:MAX_FILE_NAME]
    return cleaned


def check_file(file_name: str, content_type: str, size: int, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The sanitised file name, or ValidationFailed naming every problem."""
    problems: list[tuple[str, str]] = []
    name = safe_file_name(file_name)
    content_type = (content_type or "").strip().lower()
    if not name or "." not in name:
        problems.append(("fileName", "needs a name with an extension, e.g. 通知.pdf"))
    suffixes = CONTENT_TYPES.get(content_type)
    if suffixes is None:
        problems.append(("contentType", f"{content_type or '(none)'} is not accepted; use one of {', '.join(sorted(CONTENT_TYPES))}"))
    elif name and not name.lower().endswith(suffixes):
        problems.append(("fileName", f"does not end in {' or '.join(suffixes)}, as {content_type} files do"))
    if not isinstance(size, int) or size < 1:
        problems.append(("size", "must be at least 1 byte"))
    elif size > max_bytes:
        problems.append(("size", f"must be at most {max_bytes // (1024 * 1024)} MB"))
    if problems:
        found = tuple(FieldProblem(f, m) for f, m in problems)
        raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in found), problems=found)
    return name
