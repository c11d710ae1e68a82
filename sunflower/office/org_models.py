"""The organisation chart: departments (a tree), positions, staff."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Department:
    id: str  # a short code the diagrams may name, e.g. "supervision-office"
    name: str
    parent_id: str | None
    leader_id: str | None  # a staff id: who escalations in this department go to
    version: int = 1


@dataclass(frozen=True)
class Position:
    id: str
    department_id: str
    title: str


@dataclass(frozen=True)
class Staff:
    id: str  # the sign-in id (the token's subject), so a principal finds its own record
    name: str
    department_id: str
    position_id: str | None = None
    person_id: str | None = None  # the population registry's Person, when the member is registered there
    version: int = 1


@dataclass(frozen=True)
class Chart:
    departments: dict[str, Department]
    positions: dict[str, Position]

    def chain(self, department_id: str) -> list[Department]:
        """The department and those above it, nearest first (stops on a cycle)."""
        out: list[Department] = []
        current = self.departments.get(department_id)
        while current is not None and current not in out:
            out.append(current)
            current = self.departments.get(current.parent_id) if current.parent_id else None
        return out

    def children(self, department_id: str | None) -> list[Department]:
        return sorted((d for d in self.departments.values() if d.parent_id == department_id), key=lambda d: d.name)
