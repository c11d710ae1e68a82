"""Builders for test data: principals, devices and their signed requests, audit events, a settable clock."""

import itertools
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sunflower.audit.models import AuditAction, AuditEvent
from sunflower.auth import device_signature
from sunflower.auth.principals import Principal, PrincipalKind, Role
from sunflower.common.clock import Clock, utc_now

_serial = itertools.count(1)


def _next(prefix: str) -> str:
    return f"{prefix}-{next(_serial)}"


# --- principals ------------------------------------------------------------------------------


def person(*roles: Role, id: str | None = None, community_id: str | None = None) -> Principal:
    return Principal(
        id=id or _next("person"), kind=PrincipalKind.PERSON, roles=frozenset(roles), community_id=community_id
    )


def admin(id: str | None = None) -> Principal:
    return person(Role.ADMIN, id=id or _next("admin"))


def auditor(id: str | None = None) -> Principal:
    return person(Role.AUDITOR, id=id or _next("auditor"))


def resident(id: str | None = None) -> Principal:
    return person(Role.RESIDENT, id=id or _next("resident"))


# --- time ------------------------------------------------------------------------------------


class FakeClock:
    """A clock the test moves by hand. Starts at the current second so stored TTLs stay realistic."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utc_now().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


# --- services built by hand (to inject a clock) ----------------------------------------------


def audit_service(clock: Clock = utc_now):
    from sunflower.audit.repository import AuditRepository
    from sunflower.audit.service import AuditService

    return AuditService(AuditRepository(), clock)


def device_service(clock: Clock = utc_now, *, skew_s: int = 300, grace_s: int = 24 * 3600):
    from sunflower.aws import kms
    from sunflower.devices.repository import DeviceRepository
    from sunflower.devices.service import DeviceService

    return DeviceService(
        DeviceRepository(),
        audit_service(clock),
        clock,
        encrypt=kms.encrypt,
        decrypt=kms.decrypt,
        clock_skew_s=skew_s,
        secret_grace_s=grace_s,
    )


# --- devices ---------------------------------------------------------------------------------


def register_device(devices, *, by: Principal | None = None, kind=None, name: str | None = None, site_id="community-7"):
    """Register a device through the service; returns the IssuedSecret (device + plaintext secret)."""
    from sunflower.devices.models import DeviceKind

    return devices.register(
        by or admin(), kind=kind or DeviceKind.GATE, name=name or _next("Gate"), site_id=site_id
    )


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def but(self, **changes) -> "SignedRequest":
        """The same request with some parts changed after signing (as a tamperer would)."""
        return replace(self, **changes)

    def without_header(self, name: str) -> "SignedRequest":
        return replace(self, headers={k: v for k, v in self.headers.items() if k != name})

    def with_header(self, name: str, value: str) -> "SignedRequest":
        return replace(self, headers={**self.headers, name: value})


def signed_request(
    device_id: str,
    secret: str,
    *,
    at: datetime | None = None,
    method: str = "POST",
    path: str = "/gate/check",
    body: bytes = b'{"frame":"f-001","lane":2}',
) -> SignedRequest:
    headers = device_signature.signed_headers(device_id, secret, method, path, body, at or utc_now())
    return SignedRequest(method, path, headers, body)


def authenticate(devices, request: SignedRequest):
    return devices.authenticate(request.method, request.path, request.headers, request.body)


# --- audit -----------------------------------------------------------------------------------


def audit_event(**overrides) -> AuditEvent:
    values = dict(
        actor="person:officer-1",
        actor_roles=("police",),
        action=AuditAction.READ,
        subject_type="person",
        subject_id="p-100",
        purpose="case 2025-17 identity check",
        detail={"field": "national_id"},
    )
    values.update(overrides)
    return AuditEvent(**values)
