"""The organisation chart's rules, and the directory the workflow engine assigns and escalates with.

Administrators keep the chart. Any official may read it. A member of staff may be linked to a Person
of the population registry (checked through the registry's service, never its tables).
"""

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from threading import Lock

from sunflower.auth.principals import Principal, PrincipalKind, Role
from sunflower.common.cursors import Page
from sunflower.common.errors import NotFound, PermissionDenied, ValidationFailed
from sunflower.common.ids import new_id
from sunflower.office.engine.models import Assignee, AssigneeKind
from sunflower.office.org_models import Chart, Department, Position, Staff
from sunflower.office.org_repository import OrgRepository

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_READERS = (Role.OFFICIAL, Role.ADMIN, Role.AUDITOR)
LINK_PURPOSE = "office organisation chart: link a member of staff to their registry record"

# Given person ids, which exist in the population registry (e.g. RegistryService.persons with SYSTEM).
PersonCheck = Callable[[Iterable[str]], set[str]]


def registry_person_check(registry) -> PersonCheck:
    """A PersonCheck over sunflower.registries.service.RegistryService (reads are audited there)."""
    from sunflower.auth.principals import SYSTEM

    def check(person_ids: Iterable[str]) -> set[str]:
        return set(registry.persons(SYSTEM, list(person_ids), LINK_PURPOSE))

    return check


class OrgService:
    def __init__(self, repository: OrgRepository, *, person_check: PersonCheck | None = None, cache_s: float = 30.0) -> None:
        self._repo = repository
        self._person_check = person_check
        self._cache_s = cache_s
        self._lock = Lock()
        self._chart: tuple[float, Chart] | None = None
        self._staff: dict[str, tuple[float, Staff | None]] = {}

    # --- reading ---

    def chart(self, viewer: Principal) -> Chart:
        _require_reader(viewer)
        return self._current_chart(fresh=True)

    def department(self, viewer: Principal, department_id: str) -> Department:
        _require_reader(viewer)
        return self._repo.department(department_id)

    def staff_member(self, viewer: Principal, staff_id: str) -> Staff:
        if viewer.id != staff_id:
            _require_reader(viewer)
        staff = self._repo.staff(staff_id)
        if staff is None:
            raise NotFound(f"no member of staff {staff_id}")
        return staff

    def staff_many(self, viewer: Principal, staff_ids: Iterable[str]) -> dict[str, Staff]:
        _require_reader(viewer)
        return self._repo.staff_many(staff_ids)

    def staff_of(self, viewer: Principal, department_id: str, *, limit: int, start: dict | None) -> Page[Staff]:
        _require_reader(viewer)
        return self._repo.staff_of(department_id, limit=limit, start=start)

    def staff_of_person(self, viewer: Principal, person_id: str) -> list[Staff]:
        _require_reader(viewer)
        return self._repo.staff_linked_to(person_id)

    # --- changing ---

    def add_department(self, actor: Principal, name: str, *, code: str | None = None, parent_id: str | None = None) -> Department:
        _require_admin(actor)
        name = _name(name)
        code = code or new_id()
        if not _CODE.match(code):
            raise ValidationFailed.on("code", "letters, digits, '.', '_' or '-', at most 64, starting with a letter or digit")
        if parent_id:
            self._repo.department(parent_id)
        department = Department(code, name, parent_id, None)
        self._repo.save_department(department, None)
        self._forget()
        return department

    def move_department(self, actor: Principal, department_id: str, parent_id: str | None) -> Department:
        _require_admin(actor)
        current = self._repo.department(department_id)
        if parent_id:
            chart = self._current_chart(fresh=True)
            if parent_id not in chart.departments:
                raise NotFound(f"no department {parent_id}")
            if any(d.id == department_id for d in chart.chain(parent_id)):
                raise ValidationFailed.on("parentId", "would put the department under itself")
        moved = replace(current, parent_id=parent_id, version=current.version + 1)
        self._repo.save_department(moved, current.version)
        self._forget()
        return moved

    def set_leader(self, actor: Principal, department_id: str, staff_id: str | None) -> Department:
        _require_admin(actor)
        current = self._repo.department(department_id)
        if staff_id and self._repo.staff(staff_id) is None:
            raise NotFound(f"no member of staff {staff_id}")
        changed = replace(current, leader_id=staff_id, version=current.version + 1)
        self._repo.save_department(changed, current.version)
        self._forget()
        return changed

    def add_position(self, actor: Principal, department_id: str, title: str) -> Position:
        _require_admin(actor)
        self._repo.department(department_id)
        position = Position(new_id(), department_id, _name(title, "title"))
        self._repo.add_position(position)
        self._forget()
        return position

    def add_staff(
        self,
        actor: Principal,
        staff_id: str,
        name: str,
        department_id: str,
        *,
        position_id: str | None = None,
        person_id: str | None = None,
    ) -> Staff:
        _require_admin(actor)
        staff = Staff(staff_id.strip(), _name(name), department_id, position_id, person_id)
        self._check_staff(staff)
        self._repo.save_staff(staff, None)
        self._forget(staff.id)
        return staff

    def update_staff(
        self,
        actor: Principal,
        staff_id: str,
        *,
        name: str | None = None,
        department_id: str | None = None,
        position_id: str | None = None,
        person_id: str | None = None,
    ) -> Staff:
        _require_admin(actor)
        current = self._repo.staff(staff_id)
        if current is None:
            raise NotFound(f"no member of staff {staff_id}")
        changed = replace(
            current,
            name=_name(name) if name is not None else current.name,
            department_id=department_id or current.department_id,
            position_id=position_id if position_id is not None else current.position_id,
            person_id=person_id if person_id is not None else current.person_id,
            version=current.version + 1,
        )
        self._check_staff(changed)
        self._repo.save_staff(changed, current.version)
        self._forget(staff_id)
        return changed

    def _check_staff(self, staff: Staff) -> None:
        if not staff.id:
            raise ValidationFailed.on("staffId", "is required")
        department = self._repo.department(staff.department_id)
        if staff.position_id:
            position = self._repo.position(staff.position_id)
            if position.department_id != department.id:
                raise ValidationFailed.on("positionId", f"is a position of {position.department_id}, not {department.id}")
        if staff.person_id:
            if self._person_check is None:
                raise ValidationFailed.on("personId", "the population registry is not available to check it")
            if staff.person_id not in self._person_check([staff.person_id]):
                raise ValidationFailed.on("personId", f"no person {staff.person_id} in the population registry")

    # --- the engine's directory ---

    def keys_of(self, principal: Principal) -> tuple[Assignee, ...]:
        keys = [Assignee(AssigneeKind.PERSON, principal.id)]
        departments = [principal.department] if principal.department else []
        if principal.kind is PrincipalKind.PERSON:
            staff = self._cached_staff(principal.id)
            if staff and staff.department_id not in departments:
                departments.append(staff.department_id)
        keys += [Assignee(AssigneeKind.DEPARTMENT, d) for d in departments]
        keys += [Assignee(AssigneeKind.ROLE, r.value) for r in sorted(principal.roles)]
        return tuple(keys)

    def leaders_above(self, assignees: Sequence[Assignee]) -> list[str]:
        """Leaders up the chart from the first assignee that sits in it, nearest first, never the assignee."""
        chart = self._current_chart()
        for assignee in assignees:
            if assignee.kind is AssigneeKind.DEPARTMENT:
                start, me = assignee.id, None
            elif assignee.kind is AssigneeKind.PERSON:
                staff = self._cached_staff(assignee.id)
                if staff is None:
                    continue
                start, me = staff.department_id, staff.id
            else:
                continue
            leaders: list[str] = []
            for department in chart.chain(start):
                if department.leader_id and department.leader_id != me and department.leader_id not in leaders:
                    leaders.append(department.leader_id)
            if leaders:
                return leaders
        return []

    def leader_of(self, department_id: str) -> str | None:
        department = self._current_chart().departments.get(department_id)
        return department.leader_id if department else None

    # --- caches (the chart changes rarely; a stale read lasts at most cache_s) ---

    def _current_chart(self, fresh: bool = False) -> Chart:
        with self._lock:
            cached = self._chart
        if cached and not fresh and time.monotonic() - cached[0] < self._cache_s:
            return cached[1]
        departments, positions = self._repo.chart()
        chart = Chart({d.id: d for d in departments}, {p.id: p for p in positions})
        with self._lock:
            self._chart = (time.monotonic(), chart)
        return chart

    def _cached_staff(self, staff_id: str) -> Staff | None:
        with self._lock:
            cached = self._staff.get(staff_id)
        if cached and time.monotonic() - cached[0] < self._cache_s:
            return cached[1]
        staff = self._repo.staff(staff_id)
        with self._lock:
            if len(self._staff) > 10_000:
                self._staff.clear()
            self._staff[staff_id] = (time.monotonic(), staff)
        return staff

    def _forget(self, staff_id: str | None = None) -> None:
        with self._lock:
            self._chart = None
            if staff_id:
                self._staff.pop(staff_id, None)


def _require_admin(actor: Principal) -> None:
    if not (actor.kind is PrincipalKind.SYSTEM or actor.has_any(Role.ADMIN)):
        raise PermissionDenied("only administrators change the organisation chart")


def _require_reader(viewer: Principal) -> None:
    if not (viewer.kind is PrincipalKind.SYSTEM or viewer.has_any(*_READERS)):
        raise PermissionDenied("only officials read the organisation chart")


def _name(value: str, field: str = "name") -> str:
    value = (value or "").strip()
    if not value or len(value) > 200:
        raise ValidationFailed.on(field, "is required and at most 200 characters")
    return value
