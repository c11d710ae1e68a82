"""The organisation chart in the `office` table.

Key design (prefixes live here and only here):
  ORG / DEPT#{id}        a department (the whole chart is one query)
  ORG / POS#{id}         a position in a department
  STAFF#{id} / STAFF     a member of staff (id = their sign-in id)
                          gsi1: DEPTSTAFF#{department} / {name}#{id}
                          gsi2: PERSONLINK#{person id} / {id}     (when linked to the population registry)
"""

from collections.abc import Iterable

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from sunflower.aws.dynamo import overloaded_index, page_of, table_meta
from sunflower.common.cursors import Page
from sunflower.common.errors import AlreadyExists, InvalidState, NotFound
from sunflower.office.org_models import Department, Position, Staff

_ORG = "ORG"


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


def _department(item: _Item) -> Department:
    d = item.data
    return Department(d["id"], d["name"], d.get("parent_id"), d.get("leader_id"), int(item.version or 1))


def _position(item: _Item) -> Position:
    d = item.data
    return Position(d["id"], d["department_id"], d["title"])


def _staff(item: _Item) -> Staff:
    d = item.data
    return Staff(d["id"], d["name"], d["department_id"], d.get("position_id"), d.get("person_id"), int(item.version or 1))


def _staff_item(s: Staff) -> _Item:
    item = _Item(f"STAFF#{s.id}", "STAFF", version=s.version, data={
        "id": s.id, "name": s.name, "department_id": s.department_id, "position_id": s.position_id, "person_id": s.person_id,
    })
    item.gsi1pk, item.gsi1sk = f"DEPTSTAFF#{s.department_id}", f"{s.name}#{s.id}"
    if s.person_id:
        item.gsi2pk, item.gsi2sk = f"PERSONLINK#{s.person_id}", s.id
    return item


def _save(item: _Item, previous_version: int | None, what: str) -> None:
    condition = _Item.pk.does_not_exist() if previous_version is None else _Item.version == previous_version
    try:
        item.save(condition=condition)
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            if previous_version is None:
                raise AlreadyExists(f"{what} already exists") from None
            raise InvalidState(f"{what} was changed by someone else meanwhile; reload and try again") from None
        raise


class OrgRepository:
    def chart(self) -> tuple[list[Department], list[Position]]:
        departments, positions = [], []
        for item in _Item.query(_ORG, consistent_read=True):
            if item.sk.startswith("DEPT#"):
                departments.append(_department(item))
            elif item.sk.startswith("POS#"):
                positions.append(_position(item))
        return departments, positions

    def department(self, department_id: str) -> Department:
        try:
            return _department(_Item.get(_ORG, f"DEPT#{department_id}", consistent_read=True))
        except _Item.DoesNotExist:
            raise NotFound(f"no department {department_id}") from None

    def save_department(self, department: Department, previous_version: int | None) -> None:
        item = _Item(_ORG, f"DEPT#{department.id}", version=department.version, data={
            "id": department.id, "name": department.name, "parent_id": department.parent_id, "leader_id": department.leader_id,
        })
        _save(item, previous_version, f"department {department.id}")

    def position(self, position_id: str) -> Position:
        try:
            return _position(_Item.get(_ORG, f"POS#{position_id}", consistent_read=True))
        except _Item.DoesNotExist:
            raise NotFound(f"no position {position_id}") from None

    def add_position(self, position: Position) -> None:
        item = _Item(_ORG, f"POS#{position.id}", version=1, data={
            "id": position.id, "department_id": position.department_id, "title": position.title,
        })
        _save(item, None, f"position {position.id}")

    def staff(self, staff_id: str) -> Staff | None:
        try:
            return _staff(_Item.get(f"STAFF#{staff_id}", "STAFF"))
        except _Item.DoesNotExist:
            return None

    def staff_many(self, staff_ids: Iterable[str]) -> dict[str, Staff]:
        keys = [(f"STAFF#{i}", "STAFF") for i in dict.fromkeys(staff_ids) if i]
        return {s.id: s for s in map(_staff, _Item.batch_get(keys))}

    def save_staff(self, staff: Staff, previous_version: int | None) -> None:
        _save(_staff_item(staff), previous_version, f"staff member {staff.id}")

    def staff_of(self, department_id: str, *, limit: int, start: dict | None) -> Page[Staff]:
        result = _Item.gsi1.query(f"DEPTSTAFF#{department_id}", limit=limit, page_size=limit, last_evaluated_key=start)
        return page_of(result, _staff, ("pk", "sk", "gsi1pk", "gsi1sk"))

    def staff_linked_to(self, person_id: str) -> list[Staff]:
        return [_staff(i) for i in _Item.gsi2.query(f"PERSONLINK#{person_id}")]
