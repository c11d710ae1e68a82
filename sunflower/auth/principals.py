"""Who is calling: a person (from a JWT), a device (from a signed request) or the system itself."""

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """Roles are the issuer's groups (`cognito:groups`); infra/serverless.yml declares one group each."""

    RESIDENT = "resident"
    PROPERTY_MANAGER = "property_manager"
    COMMUNITY_STAFF = "community_staff"
    POLICE = "police"
    TRAFFIC_ENGINEER = "traffic_engineer"
    OFFICIAL = "official"
    AUDITOR = "auditor"
    ADMIN = "admin"


class PrincipalKind(StrEnum):
    PERSON = "person"
    DEVICE = "device"
    SYSTEM = "system"


@dataclass(frozen=True)
class Principal:
    id: str
    kind: PrincipalKind = PrincipalKind.PERSON
    roles: frozenset[Role] = field(default_factory=frozenset)
    # Scope claims a person's token may carry (custom:community_id, custom:department).
    community_id: str | None = None
    department: str | None = None

    def has_any(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)

    @property
    def audit_name(self) -> str:
        return f"{self.kind.value}:{self.id}"


SYSTEM = Principal(id="sunflower", kind=PrincipalKind.SYSTEM)
