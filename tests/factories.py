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


# --- registries --------------------------------------------------------------------------------
# Principals of the registry roles, rows as clerks type or upload them, domain records for unit
# tests, and a RegistryService built by hand so a test can hold its clock.

import random as _random

_registry_rng = _random.Random(2260)


def official(id: str | None = None, *, community_id: str | None = None) -> Principal:
    return person(Role.OFFICIAL, id=id or _next("official"), community_id=community_id)


def police(id: str | None = None) -> Principal:
    return person(Role.POLICE, id=id or _next("police"))


def community_staff(community_id: str | None, id: str | None = None) -> Principal:
    return person(Role.COMMUNITY_STAFF, id=id or _next("staff"), community_id=community_id)


def property_manager(community_id: str | None, id: str | None = None) -> Principal:
    return person(Role.PROPERTY_MANAGER, id=id or _next("property"), community_id=community_id)


def traffic_engineer(id: str | None = None) -> Principal:
    return person(Role.TRAFFIC_ENGINEER, id=id or _next("traffic"))


def new_id_number(*, born=None, sex=None) -> str:
    """A valid, invented 18-character id number of someone registered in 平房区."""
    from sunflower.registries import synthetic

    return synthetic.id_number(_registry_rng, born=born, sex=sex)


def new_credit_code() -> str:
    from sunflower.registries import synthetic

    return synthetic.credit_code(_registry_rng)


def new_phone() -> str:
    from sunflower.registries import synthetic

    return synthetic.mobile_phone(_registry_rng)


def person_row(**overrides: str) -> dict[str, str]:
    """A person as a spreadsheet row or GraphQL input states it: text keyed by canonical field name."""
    row = {
        "name": _next("张伟").replace("-", ""),
        "id_number": new_id_number(),
        "phone": new_phone(),
        "current_community_id": "pf-youxie-xingfu",
        "current_community": "幸福社区",
        "current_building": "3",
        "current_unit": "2",
        "current_room": "501",
        "registered_district": "平房区",
        "registered_detail": "友协大街101号",
    }
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not None}


def entity_row(legal_rep_id_number: str, /, **overrides: str) -> dict[str, str]:
    row = {
        "name": _next("哈尔滨向日葵科技有限公司").replace("-", ""),
        "credit_code": new_credit_code(),
        "legal_rep_id_number": legal_rep_id_number,
        "entity_type": "有限责任公司",
        "registered_capital": "500万元",
        "industry_code": "I65",
        "established_on": "2018-05-20",
        "address_district": "平房区",
        "address_detail": "哈南工业新城1号",
    }
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not None}


def credit_row(subject: str, category: str, /, **overrides: str) -> dict[str, str]:
    row = {
        "subject": subject,
        "category": category,
        "decided_on": "2025-06-01",
        "department": "平房区市场监督管理局",
        "decision_number": _next("平市监罚〔2025〕"),
        "summary": "",
    }
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not None}


def a_person(**overrides):
    """A domain Person (no storage) for rules that only read it."""
    from sunflower.registries.identifiers import parse_id_number
    from sunflower.registries.models import Address, Person, PersonStatus

    now = utc_now()
    number = overrides.pop("id_number", None) or new_id_number()
    parsed = parse_id_number(number, today=now.date())
    community_id = overrides.pop("community_id", "pf-youxie-xingfu")
    values = dict(
        id=_next("p"),
        name="李秀英",
        id_number=parsed.value,
        sex=parsed.sex,
        birth_date=parsed.birth_date,
        status=PersonStatus.RESIDENT,
        created_at=now,
        updated_at=now,
        phone="13812345678",
        registered_address=Address(district="平房区", detail="友协大街101号"),
        current_address=Address(community_id=community_id, community="幸福社区") if community_id else None,
    )
    values.update(overrides)
    return Person(**values)


def credit_record(category, *, decided_on, subject_id: str = "p-1", subject_type=None, valid_until=None, **overrides):
    """A domain CreditRecord (no storage) for the scoring rules."""
    from sunflower.registries.models import CreditRecord, SubjectType

    values = dict(
        id=_next("cr"),
        subject_type=subject_type or SubjectType.PERSON,
        subject_id=subject_id,
        category=category,
        department="平房区市场监督管理局",
        decision_number=_next("平市监〔2025〕"),
        decided_on=decided_on,
        created_at=utc_now(),
        valid_until=valid_until,
    )
    values.update(overrides)
    return CreditRecord(**values)


def registry_service(clock: Clock = utc_now, *, persons=None):
    """A RegistryService on the embedded cloud with the given clock (and, optionally, person repository)."""
    from sunflower.registries.repository import (
        CreditRepository,
        EntityRepository,
        HouseholdRepository,
        PersonRepository,
    )
    from sunflower.registries.service import RegistryService

    return RegistryService(
        persons or PersonRepository(),
        HouseholdRepository(),
        EntityRepository(),
        CreditRepository(),
        audit_service(clock),
        clock,
    )


def table_items(name: str) -> list[dict]:
    """Every item of a table as stored (raw boto3, beneath the repositories), all pages."""
    import boto3

    from sunflower.common.settings import get_settings

    settings = get_settings()
    table = boto3.resource("dynamodb", region_name=settings.region).Table(settings.resource(name))
    items, kwargs = [], {"ConsistentRead": True}
    while True:
        page = table.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def audit_log() -> list[dict]:
    """The audit chain's entries as stored, oldest first (the head and seals left out)."""
    import json

    entries = sorted((i for i in table_items("audit") if i["pk"] == "LOG"), key=lambda i: int(i["sk"]))
    return [{**e, "detail": json.loads(e["detail"]) if isinstance(e.get("detail"), str) else e.get("detail")}
            for e in entries]


class RecordingListener:
    """A residency-change listener that keeps every list of changes it was given, in order."""

    def __init__(self) -> None:
        self.calls: list[list] = []

    def __call__(self, changes: list) -> None:
        self.calls.append(list(changes))


def recording_listener() -> RecordingListener:
    return RecordingListener()


def recording_handlers(events: list[dict], *, crash_first: bool = False):
    """An EventPump resolver: the real handlers, recording every event they are given. With crash_first
    the first invocation raises, as a cold start that cannot reach a service would."""
    from sunflower.local.pump import import_handler

    def resolve(spec):
        real = import_handler(spec)

        def handler(event, context):
            events.append(event)
            if crash_first and len(events) == 1:
                raise ConnectionError("service unavailable")
            return real(event, context)

        return handler

    return resolve
