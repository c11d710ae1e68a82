"""Official documents, their attachments, participants and number sequences in the `office` table.

Key design (prefixes live here and only here):
  DOC#{id} / DOC                       a document; `number` (its 发文字号 or 收文编号) is an attribute of
                                        its own, set once by the numbering transaction
                                        gsi2: DOCS#{kind} / {created_at}#{id}            (every document)
  DOC#{id} / PART#{assignee key}       who takes part in it (person:…, department:…)
                                        gsi1: DOCPART#{kind}#{assignee key} / {created_at}#{id}
  DOC#{id} / ATT#{attachment id}       an attachment (the file is in the office bucket)
  DOCSEQ#{series}#{year} / COUNTER     the last number given in a series and year (`seq`)
  DOCSEQ#{series}#{year} / NO#{seq}    the register (登记簿): which document has each number

A number is given in one transaction of three conditional writes: the counter moves from the
value read to the next, the register entry for that number is new, and the document has no number
yet. Two documents numbered at once cannot both take a number (one counter condition fails, that
one reads again); a document numbered twice (a retry) keeps its first number; and a number is never
taken without a document to carry it, so the register has neither repeats nor gaps.
"""

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from sunflower.aws.dynamo import connection, overloaded_index, page_of, table_meta
from sunflower.common.clock import from_iso, to_iso
from sunflower.common.cursors import Page
from sunflower.common.errors import AlreadyExists, InvalidState, NotFound
from sunflower.office.documents.models import (
    Attachment,
    AttachmentStatus,
    Document,
    DocumentKind,
    DocumentNumber,
    DocumentStatus,
    Receipt,
    Retention,
    Urgency,
)


class _Item(Model):
    Meta = table_meta("office")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi1 = overloaded_index("gsi1")
    gsi2 = overloaded_index("gsi2")
    data = JSONAttribute(null=True)
    number = JSONAttribute(null=True)  # documents: {"series", "year", "seq"} once numbered
    seq = NumberAttribute(null=True)  # counters: the last number given
    version = NumberAttribute(null=True)


class NumberTaken(Exception):
    """The sequence moved on since it was read: read it again and try the next number."""


class AlreadyNumbered(Exception):
    """The document has a number already (an earlier attempt got it)."""


# --- keys --------------------------------------------------------------------------------------


def _doc_key(document_id: str) -> tuple[str, str]:
    return f"DOC#{document_id}", "DOC"


def _series_pk(series: str, year: int) -> str:
    return f"DOCSEQ#{series}#{year}"


def _created_sk(document: Document) -> str:
    return f"{to_iso(document.created_at)}#{document.id}"


# --- (de)serialisation ---------------------------------------------------------------------------


def _opt_iso(value) -> str | None:
    return to_iso(value) if value else None


def _opt_dt(value: str | None):
    return from_iso(value) if value else None


def _number(value: dict | None) -> DocumentNumber | None:
    return DocumentNumber(value["series"], int(value["year"]), int(value["seq"])) if value else None


def _number_data(number: DocumentNumber | None) -> dict | None:
    return {"series": number.series, "year": number.year, "seq": number.seq} if number else None


def _document_data(d: Document) -> dict[str, Any]:
    return {
        "id": d.id,
        "kind": d.kind.value,
        "title": d.title,
        "status": d.status.value,
        "urgency": d.urgency.value,
        "created_by": d.created_by,
        "created_at": to_iso(d.created_at),
        "updated_at": to_iso(d.updated_at),
        "instance_id": d.instance_id,
        "instance_version": d.instance_version,
        "participants": sorted(d.participants),
        "organ_code": d.organ_code,
        "drafter_id": d.drafter_id,
        "drafter_department": d.drafter_department,
        "countersign_departments": list(d.countersign_departments),
        "signer_id": d.signer_id,
        "recipients": list(d.recipients),
        "signed_at": _opt_iso(d.signed_at),
        "distributed_at": _opt_iso(d.distributed_at),
        "receipts": [
            {"department_id": r.department_id, "instance_id": r.instance_id, "acknowledged_at": _opt_iso(r.acknowledged_at),
             "acknowledged_by": r.acknowledged_by, "note": r.note}
            for r in d.receipts
        ],
        "source_organ": d.source_organ,
        "source_number": d.source_number,
        "received_on": d.received_on.isoformat() if d.received_on else None,
        "proposal": d.proposal,
        "leader_id": d.leader_id,
        "instruction": d.instruction,
        "handling_department": d.handling_department,
        "supervision_item_id": d.supervision_item_id,
        "result": d.result,
        "retention": d.retention.value if d.retention else None,
        "archive_ref": d.archive_ref,
        "completed_at": _opt_iso(d.completed_at),
    }


def _document(item: _Item) -> Document:
    d = item.data
    kind = DocumentKind(d["kind"])
    number = _number(item.number)
    return Document(
        id=d["id"],
        kind=kind,
        title=d["title"],
        status=DocumentStatus(d["status"]),
        urgency=Urgency(d.get("urgency", Urgency.NORMAL.value)),
        created_by=d["created_by"],
        created_at=from_iso(d["created_at"]),
        updated_at=from_iso(d["updated_at"]),
        instance_id=d.get("instance_id"),
        instance_version=int(d.get("instance_version", 0)),
        participants=frozenset(d.get("participants", ())),
        organ_code=d.get("organ_code"),
        drafter_id=d.get("drafter_id"),
        drafter_department=d.get("drafter_department"),
        countersign_departments=tuple(d.get("countersign_departments", ())),
        signer_id=d.get("signer_id"),
        recipients=tuple(d.get("recipients", ())),
        number=number if kind is DocumentKind.OUTGOING else None,
        signed_at=_opt_dt(d.get("signed_at")),
        distributed_at=_opt_dt(d.get("distributed_at")),
        receipts=tuple(
            Receipt(r["department_id"], r.get("instance_id"), _opt_dt(r.get("acknowledged_at")), r.get("acknowledged_by"),
                    r.get("note"))
            for r in d.get("receipts", ())
        ),
        source_organ=d.get("source_organ"),
        source_number=d.get("source_number"),
        received_on=date.fromisoformat(d["received_on"]) if d.get("received_on") else None,
        registration_number=number if kind is DocumentKind.INCOMING else None,
        proposal=d.get("proposal"),
        leader_id=d.get("leader_id"),
        instruction=d.get("instruction"),
        handling_department=d.get("handling_department"),
        supervision_item_id=d.get("supervision_item_id"),
        result=d.get("result"),
        retention=Retention(d["retention"]) if d.get("retention") else None,
        archive_ref=d.get("archive_ref"),
        completed_at=_opt_dt(d.get("completed_at")),
        version=int(item.version or 1),
    )


def _record(d: Document) -> _Item:
    record = _Item(*_doc_key(d.id), data=_document_data(d), version=d.version)
    record.number = _number_data(d.number or d.registration_number)
    record.gsi2pk, record.gsi2sk = f"DOCS#{d.kind.value}", _created_sk(d)
    return record


def _attachment_data(a: Attachment) -> dict[str, Any]:
    return {
        "id": a.id, "document_id": a.document_id, "file_name": a.file_name, "content_type": a.content_type,
        "size": a.size, "key": a.key, "uploaded_by": a.uploaded_by, "requested_at": to_iso(a.requested_at),
        "status": a.status.value, "confirmed_at": _opt_iso(a.confirmed_at),
    }


def _attachment(item: _Item) -> Attachment:
    d = item.data
    return Attachment(
        d["id"], d["document_id"], d["file_name"], d["content_type"], int(d["size"]), d["key"], d["uploaded_by"],
        from_iso(d["requested_at"]), AttachmentStatus(d["status"]), _opt_dt(d.get("confirmed_at")),
    )


def _conflict(exc: PutError | TransactWriteError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


class DocumentRepository:
    # --- documents -------------------------------------------------------------------------------

    def get(self, document_id: str) -> Document:
        try:
            return _document(_Item.get(*_doc_key(document_id), consistent_read=True))
        except _Item.DoesNotExist:
            raise NotFound(f"no official document {document_id}") from None

    def get_many(self, document_ids: Iterable[str]) -> dict[str, Document]:
        keys = [_doc_key(i) for i in dict.fromkeys(document_ids) if i]
        return {d.id: d for d in map(_document, _Item.batch_get(keys))}

    def save(self, document: Document, previous_version: int | None) -> None:
        """Write the document if it is still at `previous_version` (None: if it does not exist yet)."""
        condition = _Item.pk.does_not_exist() if previous_version is None else _Item.version == previous_version
        try:
            _record(document).save(condition=condition)
        except PutError as exc:
            if _conflict(exc):
                if previous_version is None:
                    raise AlreadyExists(f"official document {document.id} exists already") from None
                raise InvalidState(f"official document {document.id} was changed by someone else meanwhile") from None
            raise

    def add_participants(self, document: Document, keys: Iterable[str]) -> None:
        """Index the document under each participant key (idempotent; written before the document)."""
        with _Item.batch_write() as batch:
            for key in dict.fromkeys(keys):
                item = _Item(f"DOC#{document.id}", f"PART#{key}", data={"document_id": document.id})
                item.gsi1pk, item.gsi1sk = f"DOCPART#{document.kind.value}#{key}", _created_sk(document)
                batch.save(item)

    def page_for(self, keys: Sequence[str], kind: DocumentKind, *, limit: int, start: dict | None) -> Page[str]:
        """Ids of the documents of `kind` any of `keys` takes part in, newest first (one query per key)."""
        before = (start or {}).get("before")
        found: dict[str, str] = {}  # sort key -> document id
        more = False
        for key in dict.fromkeys(keys):
            condition = _Item.gsi1sk < before if before else None
            result = _Item.gsi1.query(f"DOCPART#{kind.value}#{key}", condition, scan_index_forward=False,
                                      limit=limit + 1, page_size=limit + 1)
            rows = list(result)
            more = more or len(rows) > limit
            for row in rows[:limit]:
                found[row.gsi1sk] = row.data["document_id"]
        ordered = sorted(found.items(), reverse=True)
        more = more or len(ordered) > limit
        page = ordered[:limit]
        return Page([doc_id for _, doc_id in page], {"before": page[-1][0]} if more and page else None,
                    [{"before": sk} for sk, _ in page])

    def page_all(self, kind: DocumentKind, *, limit: int, start: dict | None) -> Page[Document]:
        result = _Item.gsi2.query(f"DOCS#{kind.value}", scan_index_forward=False, limit=limit, page_size=limit,
                                  last_evaluated_key=start)
        return page_of(result, _document, ("pk", "sk", "gsi2pk", "gsi2sk"))

    # --- numbers ---------------------------------------------------------------------------------

    def last_number(self, series: str, year: int) -> int:
        try:
            return int(_Item.get(_series_pk(series, year), "COUNTER", consistent_read=True).seq or 0)
        except _Item.DoesNotExist:
            return 0

    def claim_number(self, document_id: str, number: DocumentNumber, *, at: str) -> None:
        """Give `number` to the document if the sequence is still at the number before it.

        NumberTaken if the sequence moved on; AlreadyNumbered if the document has a number;
        NotFound if there is no such document.
        """
        counter = _Item(_series_pk(number.series, number.year), "COUNTER")
        entry = _Item(_series_pk(number.series, number.year), f"NO#{number.seq:08d}",
                      data={"document_id": document_id, "seq": number.seq, "at": at})
        document = _Item(*_doc_key(document_id))
        moved = _Item.seq.does_not_exist() if number.seq == 1 else _Item.seq == number.seq - 1
        try:
            with TransactWrite(connection=connection()) as transaction:
                transaction.update(counter, actions=[_Item.seq.set(number.seq)], condition=moved)
                transaction.save(entry, condition=_Item.pk.does_not_exist())
                transaction.update(
                    document, actions=[_Item.number.set(_number_data(number)), _Item.version.add(1)],
                    condition=_Item.pk.exists() & _Item.number.does_not_exist(),
                )
        except TransactWriteError as exc:
            reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
            if len(reasons) == 3 and reasons[2] == "ConditionalCheckFailed":
                try:
                    current = _Item.get(*_doc_key(document_id), consistent_read=True)
                except _Item.DoesNotExist:
                    raise NotFound(f"no official document {document_id}") from None
                if current.number:
                    raise AlreadyNumbered() from None
            if any(r == "ConditionalCheckFailed" for r in reasons[:2]) or "TransactionConflict" in reasons:
                raise NumberTaken() from None
            raise

    def register(self, series: str, year: int, *, limit: int, start: dict | None) -> Page[tuple[int, str]]:
        """The register of a series and year: (number, document id), in number order."""
        result = _Item.query(_series_pk(series, year), _Item.sk.startswith("NO#"), limit=limit, page_size=limit,
                             last_evaluated_key=start, consistent_read=True)
        return page_of(result, lambda r: (int(r.data["seq"]), r.data["document_id"]), ("pk", "sk"))

    # --- attachments -----------------------------------------------------------------------------

    def add_attachment(self, attachment: Attachment) -> None:
        _Item(f"DOC#{attachment.document_id}", f"ATT#{attachment.id}", data=_attachment_data(attachment)).save(
            condition=_Item.pk.does_not_exist()
        )

    def attachment(self, document_id: str, attachment_id: str) -> Attachment:
        try:
            return _attachment(_Item.get(f"DOC#{document_id}", f"ATT#{attachment_id}", consistent_read=True))
        except _Item.DoesNotExist:
            raise NotFound(f"no attachment {attachment_id} on document {document_id}") from None

    def confirm_attachment(self, attachment: Attachment) -> None:
        """Mark a pending attachment ready (a second confirmation changes nothing)."""
        item = _Item(f"DOC#{attachment.document_id}", f"ATT#{attachment.id}", data=_attachment_data(attachment))
        try:
            item.save(condition=_Item.pk.exists())
        except PutError as exc:
            if _conflict(exc):
                raise NotFound(f"no attachment {attachment.id}") from None
            raise

    def attachments(self, document_id: str) -> list[Attachment]:
        return [_attachment(i) for i in _Item.query(f"DOC#{document_id}", _Item.sk.startswith("ATT#"))]
