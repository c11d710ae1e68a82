"""Supervision items and their progress reports in the `office` table.

Key design (prefixes live here and only here):
  SUPV#{id} / ITEM              a supervision item
                                 gsi1: SUPVDEPT#{responsible department} / {deadline}#{id}
                                 gsi2: SUPV / {deadline}#{id}      (every item, by deadline)
  SUPV#{id} / REPORT#{ulid}     a progress report
"""

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from sunflower.aws.dynamo import overloaded_index, page_of, table_meta
from sunflower.common.clock import from_iso, to_iso
from sunflower.common.cursors import Page
from sunflower.common.errors import InvalidState, NotFound
from sunflower.office.supervision.models import (
    Milestone,
    ProgressReport,
    SourceKind,
    SupervisionItem,
    SupervisionStatus,
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
    version = NumberAttribute(null=True)


def _opt_iso(value) -> str | None:
    return to_iso(value) if value else None


def _item_data(i: SupervisionItem) -> dict[str, Any]:
    return {
        "id": i.id,
        "title": i.title,
        "detail": i.detail,
        "source": i.source.value,
        "source_ref": i.source_ref,
        "leader_id": i.leader_id,
        "responsible_department": i.responsible_department,
        "assisting_departments": list(i.assisting_departments),
        "deadline": i.deadline.isoformat(),
        "milestones": [
            {"id": m.id, "title": m.title, "due": m.due.isoformat(), "done_on": m.done_on.isoformat() if m.done_on else None}
            for m in i.milestones
        ],
        "status": i.status.value,
        "instance_id": i.instance_id,
        "created_by": i.created_by,
        "created_at": to_iso(i.created_at),
        "progress": i.progress,
        "last_report_at": _opt_iso(i.last_report_at),
        "submitted_at": _opt_iso(i.submitted_at),
        "completed_at": _opt_iso(i.completed_at),
        "completed_on_time": i.completed_on_time,
        "review_rounds": i.review_rounds,
        "escalations": i.escalations,
    }


def _item(record: _Item) -> SupervisionItem:
    d = record.data

    def opt(name):
        return from_iso(d[name]) if d.get(name) else None

    return SupervisionItem(
        id=d["id"],
        title=d["title"],
        detail=d.get("detail", ""),
        source=SourceKind(d["source"]),
        source_ref=d.get("source_ref"),
        leader_id=d["leader_id"],
        responsible_department=d["responsible_department"],
        assisting_departments=tuple(d.get("assisting_departments", ())),
        deadline=date.fromisoformat(d["deadline"]),
        milestones=tuple(
            Milestone(m["id"], m["title"], date.fromisoformat(m["due"]),
                      date.fromisoformat(m["done_on"]) if m.get("done_on") else None)
            for m in d.get("milestones", [])
        ),
        status=SupervisionStatus(d["status"]),
        instance_id=d["instance_id"],
        created_by=d["created_by"],
        created_at=from_iso(d["created_at"]),
        progress=int(d.get("progress", 0)),
        last_report_at=opt("last_report_at"),
        submitted_at=opt("submitted_at"),
        completed_at=opt("completed_at"),
        completed_on_time=d.get("completed_on_time"),
        review_rounds=int(d.get("review_rounds", 0)),
        escalations=int(d.get("escalations", 0)),
        version=int(record.version or 1),
    )


def _record(i: SupervisionItem) -> _Item:
    record = _Item(f"SUPV#{i.id}", "ITEM", data=_item_data(i), version=i.version)
    record.gsi1pk, record.gsi1sk = f"SUPVDEPT#{i.responsible_department}", f"{i.deadline.isoformat()}#{i.id}"
    record.gsi2pk, record.gsi2sk = "SUPV", f"{i.deadline.isoformat()}#{i.id}"
    return record


def _report(record: _Item) -> ProgressReport:
    d = record.data
    return ProgressReport(d["id"], d["item_id"], from_iso(d["at"]), d["by"], d["text"], d.get("percent"),
                          tuple(d.get("milestones_done", ())))


class SupervisionRepository:
    def get(self, item_id: str) -> SupervisionItem:
        try:
            return _item(_Item.get(f"SUPV#{item_id}", "ITEM", consistent_read=True))
        except _Item.DoesNotExist:
            raise NotFound(f"no supervision item {item_id}") from None

    def get_many(self, item_ids: Iterable[str]) -> dict[str, SupervisionItem]:
        keys = [(f"SUPV#{i}", "ITEM") for i in dict.fromkeys(item_ids) if i]
        return {i.id: i for i in map(_item, _Item.batch_get(keys))}

    def save(self, item: SupervisionItem, previous_version: int | None) -> None:
        condition = _Item.pk.does_not_exist() if previous_version is None else _Item.version == previous_version
        try:
            _record(item).save(condition=condition)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise InvalidState(f"supervision item {item.id} was changed by someone else meanwhile") from None
            raise

    def add_report(self, report: ProgressReport) -> None:
        _Item(f"SUPV#{report.item_id}", f"REPORT#{report.id}", data={
            "id": report.id, "item_id": report.item_id, "at": to_iso(report.at), "by": report.by, "text": report.text,
            "percent": report.percent, "milestones_done": list(report.milestones_done),
        }).save()

    def reports(self, item_id: str, *, limit: int, start: dict | None) -> Page[ProgressReport]:
        result = _Item.query(f"SUPV#{item_id}", _Item.sk.startswith("REPORT#"), scan_index_forward=False,
                             limit=limit, page_size=limit, last_evaluated_key=start)
        return page_of(result, _report, ("pk", "sk"))

    def page(self, *, department: str | None, due_from: date | None, due_until: date | None,
             limit: int, start: dict | None) -> Page[SupervisionItem]:
        low = due_from.isoformat() if due_from else "0"
        high = f"{due_until.isoformat()}#~" if due_until else "~"
        if department:
            result = _Item.gsi1.query(f"SUPVDEPT#{department}", _Item.gsi1sk.between(low, high),
                                      limit=limit, page_size=limit, last_evaluated_key=start)
            return page_of(result, _item, ("pk", "sk", "gsi1pk", "gsi1sk"))
        result = _Item.gsi2.query("SUPV", _Item.gsi2sk.between(low, high), limit=limit, page_size=limit,
                                  last_evaluated_key=start)
        return page_of(result, _item, ("pk", "sk", "gsi2pk", "gsi2sk"))

    def all(self, *, department: str | None, due_from: date | None, due_until: date | None) -> Iterator[SupervisionItem]:
        start = None
        while True:
            page = self.page(department=department, due_from=due_from, due_until=due_until, limit=100, start=start)
            yield from page.items
            if not page.next_key:
                return
            start = page.next_key
