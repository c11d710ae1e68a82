"""Gate access: lawful enrollment, the checks a gate asks for, and who may see what happened.

Enrollment stores only templates (envelope-encrypted) with the consent that allows them; the
photos never leave the request. A check always ends in an AccessEvent (DynamoDB with a TTL, and
EventBridge), whatever went wrong; a watchlisted person raises an alert only the police see.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sunflower.audit.models import AuditAction, AuditEvent
from sunflower.audit.service import AuditService
from sunflower.auth.principals import SYSTEM, Principal, Role
from sunflower.aws import envelope
from sunflower.common.cursors import Page
from sunflower.common.errors import FieldProblem, NotFound, PermissionDenied, ValidationFailed
from sunflower.common.ids import new_id
from sunflower.devices.models import Device, DeviceKind
from sunflower.gate.encoder import MAX_PHOTOS, MAX_TOTAL_PHOTO_BYTES, FaceEncoder
from sunflower.gate.galleries import GalleryCache, GalleryStore
from sunflower.gate.models import (
    AccessEvent,
    CheckResult,
    Consent,
    ConsentMethod,
    Credential,
    Enrollment,
    GateReason,
    Method,
    Verdict,
    VisitorPass,
    WatchlistAlert,
)
from sunflower.gate.repository import (
    AccessEventRepository,
    CredentialRepository,
    EnrollmentRepository,
    PassRepository,
)
from sunflower.registries.models import Residency, ResidencyChange

if TYPE_CHECKING:
    from sunflower.gate.face import FacePipeline
    from sunflower.registries.service import RegistryService

Publish = Callable[[str, dict[str, Any]], None]

# Templates of one photo set must agree with each other: a photo of someone else slipped into
# an enrollment would otherwise open the door for them.
_SAME_PERSON = 0.45
_PIN = re.compile(r"\d{6}")
_CARD = re.compile(r"[0-9A-Za-z-]{4,32}")
_PASS_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud or typed at a keypad
_PIN_WINDOW = timedelta(minutes=10)
_PIN_MAX_FAILURES = 5
_MAX_PASS_DAYS = 31
_MAX_PASS_USES = 100
_ESTATE = (Role.PROPERTY_MANAGER, Role.ADMIN)
_WATCHERS = (Role.PROPERTY_MANAGER, Role.COMMUNITY_STAFF, Role.POLICE, Role.ADMIN)


@dataclass(frozen=True)
class ConsentInput:
    given_by: str
    given_at: datetime
    method: ConsentMethod
    reference: str | None = None


class GateService:
    def __init__(
        self,
        *,
        enrollments: EnrollmentRepository,
        credentials: CredentialRepository,
        passes: PassRepository,
        events: AccessEventRepository,
        galleries: GalleryStore,
        cache: GalleryCache,
        registries: RegistryService,
        audit: AuditService,
        clock: Callable[[], datetime],
        encoder: FaceEncoder,
        face: Callable[[], FacePipeline],
        publish: Publish,
        find_device: Callable[[str], Device | None],
        retention_days: int,
        pin_key: bytes,
    ) -> None:
        self._enrollments = enrollments
        self._credentials = credentials
        self._passes = passes
        self._events = events
        self._galleries = galleries
        self._cache = cache
        self._registries = registries
        self._audit = audit
        self._clock = clock
        self._encoder = encoder
        self._face = face
        self._publish = publish
        self._find_device = find_device
        self._retention = timedelta(days=retention_days)
        self._pin_key = pin_key

    # -- enrollment ------------------------------------------------------------------------------

    def enroll(self, actor: Principal, *, community_id: str, person_id: str, photos: list[bytes],
               consent: ConsentInput, purpose: str) -> Enrollment:
        """Enroll (or re-enroll) a resident from 1..5 photos, with the consent that allows it."""
        _require_estate(actor, community_id)
        _require_purpose(purpose)
        now = self._clock()
        self._check_consent(consent, person_id, now)
        self._require_resident(person_id, community_id)
        if not 1 <= len(photos) <= MAX_PHOTOS:
            raise ValidationFailed.on("photos", f"give 1 to {MAX_PHOTOS} photos of the resident's face")
        if sum(len(p) for p in photos) > MAX_TOTAL_PHOTO_BYTES:
            raise ValidationFailed.on("photos", f"at most {MAX_TOTAL_PHOTO_BYTES // 1_000_000} MB in all; send smaller JPEGs")
        results = self._encoder.encode(photos)
        problems = tuple(FieldProblem(f"photos[{i}]", f"{r.reason}: {r.message}")
                         for i, r in enumerate(results) if r.template is None)
        if problems:
            raise ValidationFailed("a photo cannot be used for enrollment; take it again", problems=problems)
        templates = [r.template for r in results]
        _require_same_person(templates)
        enrollment = Enrollment(community_id, person_id, len(templates), Consent(
            consent.given_by, consent.given_at, consent.method, actor.audit_name, consent.reference), now,
            actor.audit_name)
        self._audit.record(AuditEvent.by(actor, AuditAction.CREATE, "face_template", person_id, purpose,
                                         community_id=community_id, templates=str(len(templates)),
                                         consent_method=consent.method.value, consent_given_by=consent.given_by))
        sealed = envelope.seal(b"".join(templates), _template_context(community_id, person_id))
        self._enrollments.save(enrollment, sealed)
        self._galleries.update(community_id, lambda g: g.with_templates(person_id, templates))
        return enrollment

    def withdraw(self, actor: Principal, *, community_id: str, person_id: str, purpose: str) -> bool:
        """Consent withdrawn: the templates are deleted and the resident leaves the gallery."""
        if actor.id != person_id:
            _require_estate(actor, community_id)
        _require_purpose(purpose)
        self._audit.record(AuditEvent.by(actor, AuditAction.DELETE, "face_template", person_id, purpose,
                                         community_id=community_id, why="consent withdrawn"))
        return self._remove(community_id, person_id)

    def residency_changed(self, changes: list[ResidencyChange]) -> None:
        """Registry listener: residents who moved out, died or were merged lose their enrollments."""
        for change in changes:
            for enrollment in self._enrollments.of_person(change.person_id):
                if change.active and enrollment.community_id == change.community_id:
                    continue
                self._withdraw_departed(enrollment.community_id, [change.person_id], "resident left the community")
            self._credentials.remove_of_person(change.person_id, None if not change.active else change.previous_community_id)

    def reconcile(self) -> dict[str, int]:
        """Withdraw everyone still in a gallery who no longer lives in its community; per community,
        how many. The scheduled backstop for a registry change whose listener failed."""
        removed: dict[str, int] = {}
        for community_id in self._galleries.pointers.communities():
            _, gallery = self._galleries.load(community_id, consistent=False)
            persons = list(gallery.persons)
            residency: dict[str, Residency] = {}
            for start in range(0, len(persons), 100):
                residency.update(self._registries.residency(persons[start:start + 100]))
            departed = [p for p in persons if not _lives_in(residency.get(p), community_id)]
            if departed:
                self._withdraw_departed(community_id, departed, "no longer a resident (scheduled reconciliation)")
            removed[community_id] = len(departed)
        return removed

    def _withdraw_departed(self, community_id: str, person_ids: list[str], why: str) -> None:
        self._audit.record_many([AuditEvent.by(SYSTEM, AuditAction.DELETE, "face_template", p, why,
                                               community_id=community_id) for p in person_ids])
        self._remove(community_id, *person_ids)

    def _remove(self, community_id: str, *person_ids: str) -> bool:
        """Delete these persons' templates and publish one gallery version without them."""
        existed = [self._enrollments.delete(community_id, p) for p in person_ids]

        def without(gallery):
            for person_id in person_ids:
                gallery = gallery.without_person(person_id)
            return gallery

        self._galleries.update(community_id, without)
        self._cache.forget(community_id)  # this container at once; the others within the refresh interval
        return any(existed)

    def enrollment(self, viewer: Principal, community_id: str, person_id: str) -> Enrollment | None:
        if viewer.id != person_id:
            _require_estate(viewer, community_id)
        return self._enrollments.get(community_id, person_id)

    def enrollments(self, viewer: Principal, community_id: str, *, limit: int, start: dict | None) -> Page[Enrollment]:
        _require_estate(viewer, community_id)
        return self._enrollments.page(community_id, limit=limit, start=start)

    def rebuild_gallery(self, actor: Principal, community_id: str) -> int:
        """Rebuild a community's gallery from the enrollments (repair, or after a model change)."""
        if not actor.has_any(Role.ADMIN):
            raise PermissionDenied("only administrators rebuild galleries")
        templates = {}
        for person_id, sealed in self._enrollments.sealed_templates(community_id):
            blob = envelope.open_sealed(sealed, _template_context(community_id, person_id))
            size = 4 * self._galleries.dim
            templates[person_id] = [blob[i:i + size] for i in range(0, len(blob), size)]

        def rebuilt(gallery):
            fresh = type(gallery).empty(gallery.dim)
            for person_id, rows in templates.items():
                fresh = fresh.with_templates(person_id, rows)
            return fresh

        return self._galleries.update(community_id, rebuilt)

    # -- cards, PINs, visitor passes --------------------------------------------------------------

    def issue_card(self, actor: Principal, *, community_id: str, person_id: str, card_number: str,
                   purpose: str) -> Credential:
        _require_estate(actor, community_id)
        card_number = card_number.strip().upper()
        if not _CARD.fullmatch(card_number):
            raise ValidationFailed.on("cardNumber", "4 to 32 letters, digits or dashes")
        self._require_resident(person_id, community_id)
        credential = Credential(community_id, person_id, Method.CARD, self._clock(), card_number)
        self._audit.record(AuditEvent.by(actor, AuditAction.CREATE, "gate_card", person_id, purpose or "issue card",
                                         community_id=community_id))
        self._credentials.add(credential, card_number)
        return credential

    def set_pin(self, actor: Principal, *, community_id: str, person_id: str, pin: str, purpose: str) -> Credential:
        """A resident chooses their own PIN (or the property office sets one); it replaces the old one."""
        if actor.id != person_id:
            _require_estate(actor, community_id)
        if not _PIN.fullmatch(pin) or len(set(pin)) == 1 or pin in "0123456789" or pin in "9876543210":
            raise ValidationFailed.on("pin", "6 digits, not all the same and not a run like 123456")
        self._require_resident(person_id, community_id)
        credential = Credential(community_id, person_id, Method.PIN, self._clock())
        self._audit.record(AuditEvent.by(actor, AuditAction.UPDATE, "gate_pin", person_id, purpose or "set PIN",
                                         community_id=community_id))
        self._credentials.remove_of_person(person_id, community_id, Method.PIN)
        self._credentials.add(credential, self._pin_hash(community_id, pin))
        return credential

    def issue_pass(self, actor: Principal, *, community_id: str, host_person_id: str | None, visitor_name: str,
                   valid_from: datetime, valid_until: datetime, max_uses: int) -> VisitorPass:
        """A visitor pass, from a resident for their own visitor or from the property office."""
        if actor.has_any(*_ESTATE) and _in_scope(actor, community_id):
            host = host_person_id or actor.id
        elif actor.has_any(Role.RESIDENT) and (host_person_id in (None, actor.id)):
            host = actor.id
            self._require_resident(host, community_id, field="communityId")
        else:
            raise PermissionDenied("residents issue passes for their own visitors; property managers for their community")
        visitor_name = visitor_name.strip()
        if not 1 <= len(visitor_name) <= 60:
            raise ValidationFailed.on("visitorName", "1 to 60 characters")
        now = self._clock()
        if valid_until <= valid_from:
            raise ValidationFailed.on("validUntil", "must be after validFrom")
        if valid_until <= now:
            raise ValidationFailed.on("validUntil", "is already in the past")
        if valid_until - valid_from > timedelta(days=_MAX_PASS_DAYS):
            raise ValidationFailed.on("validUntil", f"a pass lasts at most {_MAX_PASS_DAYS} days")
        if not 1 <= max_uses <= _MAX_PASS_USES:
            raise ValidationFailed.on("maxUses", f"1 to {_MAX_PASS_USES}")
        code = "".join(secrets.choice(_PASS_ALPHABET) for _ in range(10))
        visitor_pass = VisitorPass(code, community_id, host, visitor_name, valid_from, valid_until, max_uses, 0,
                                   actor.audit_name, now)
        self._audit.record(AuditEvent.by(actor, AuditAction.CREATE, "visitor_pass", code, "issue visitor pass",
                                         community_id=community_id, host=host))
        self._passes.add(visitor_pass, keep_until=valid_until + self._retention)
        return visitor_pass

    def revoke_pass(self, actor: Principal, code: str) -> VisitorPass:
        current = self._passes.get(code)
        if current is None:
            raise NotFound(f"no visitor pass {code}")
        if actor.id != current.host_person_id:
            _require_estate(actor, current.community_id)
        if current.revoked_at is not None:
            return current
        self._audit.record(AuditEvent.by(actor, AuditAction.UPDATE, "visitor_pass", code, "revoke visitor pass",
                                         community_id=current.community_id))
        return self._passes.revoke(code, self._clock())

    def passes(self, viewer: Principal, *, community_id: str | None, limit: int, start: dict | None) -> Page[VisitorPass]:
        if community_id:
            _require_estate(viewer, community_id)
            return self._passes.page(community_id=community_id, limit=limit, start=start)
        return self._passes.page(host_person_id=viewer.id, limit=limit, start=start)

    # -- checks ----------------------------------------------------------------------------------

    def check_face(self, gate: Device, image: bytes) -> CheckResult:
        from sunflower.gate.face import FaceError

        started = time.perf_counter()
        community_id = self._gate_community(gate, Method.FACE, started)
        if isinstance(community_id, CheckResult):
            return community_id
        pipeline = self._face()
        try:
            analysis = pipeline.analyse(image)
        except FaceError as exc:
            return self._conclude(gate.id, community_id, Method.FACE, None, str(exc.code), started)
        _, gallery = self._cache.get(community_id)
        decision = pipeline.decide(analysis.embedding, gallery)
        liveness = analysis.liveness.score if analysis.liveness else None
        return self._conclude(gate.id, community_id, Method.FACE, decision.person_id, decision.reason, started,
                              score=decision.score, liveness=liveness)

    def check_card(self, gate: Device, card_number: str) -> CheckResult:
        started = time.perf_counter()
        community_id = self._gate_community(gate, Method.CARD, started)
        if isinstance(community_id, CheckResult):
            return community_id
        card = str(card_number).strip().upper()
        found = self._credentials.find(community_id, Method.CARD, card) if _CARD.fullmatch(card) else None
        if found is None:
            return self._conclude(gate.id, community_id, Method.CARD, None, GateReason.UNKNOWN_CARD, started)
        return self._conclude(gate.id, community_id, Method.CARD, found.person_id, GateReason.MATCH, started)

    def check_pin(self, gate: Device, pin: str) -> CheckResult:
        started = time.perf_counter()
        community_id = self._gate_community(gate, Method.PIN, started)
        if isinstance(community_id, CheckResult):
            return community_id
        window = _window(self._clock(), _PIN_WINDOW)
        if self._credentials.failures(gate.id, window) >= _PIN_MAX_FAILURES:
            return self._conclude(gate.id, community_id, Method.PIN, None, GateReason.PIN_LOCKED, started)
        pin = str(pin)
        found = self._credentials.find(community_id, Method.PIN, self._pin_hash(community_id, pin)) \
            if _PIN.fullmatch(pin) else None
        if found is None:
            self._credentials.count_failure(gate.id, window, self._clock() + 2 * _PIN_WINDOW)
            return self._conclude(gate.id, community_id, Method.PIN, None, GateReason.WRONG_PIN, started)
        return self._conclude(gate.id, community_id, Method.PIN, found.person_id, GateReason.MATCH, started)

    def check_pass(self, gate: Device, code: str) -> CheckResult:
        started = time.perf_counter()
        community_id = self._gate_community(gate, Method.VISITOR_PASS, started)
        if isinstance(community_id, CheckResult):
            return community_id
        code = str(code).strip().upper()
        found = self._passes.get(code) if re.fullmatch(r"[0-9A-Z]{6,16}", code) else None
        now = self._clock()
        reason = _pass_refusal(found, community_id, now)
        if reason is None and not self._passes.use(found, now):
            reason = _pass_refusal(self._passes.get(code), community_id, now) or GateReason.PASS_USED_UP
        host = found.host_person_id if found and found.community_id == community_id else None
        return self._conclude(gate.id, community_id, Method.VISITOR_PASS, host, reason or GateReason.MATCH, started,
                              pass_code=code if found else None, accept=reason is None)

    def refused(self, gate_id: str, method: Method, reason: str) -> CheckResult:
        """A request the gate endpoint could not even authenticate or read: still an access event."""
        started = time.perf_counter()
        device = self._find_device(gate_id) if gate_id else None
        community_id = device.site_id if device and device.kind is DeviceKind.GATE else None
        return self._conclude(gate_id or "-", community_id, method, None, reason, started)

    def _gate_community(self, gate: Device, method: Method, started: float) -> str | CheckResult:
        if gate.kind is not DeviceKind.GATE:
            return self._conclude(gate.id, None, method, None, GateReason.NOT_A_GATE, started)
        return gate.site_id

    def _conclude(self, gate_id: str, community_id: str | None, method: Method, person_id: str | None, reason: str,
                  started: float, *, score: float | None = None, liveness: float | None = None,
                  pass_code: str | None = None, accept: bool | None = None) -> CheckResult:
        accepted = (reason == GateReason.MATCH) if accept is None else accept
        residency: Residency | None = None
        if person_id:
            residency = self._registries.residency([person_id]).get(person_id)
            if accepted and method is not Method.VISITOR_PASS and not _lives_in(residency, community_id):
                accepted, reason = False, GateReason.NOT_RESIDENT
        latency_ms = (time.perf_counter() - started) * 1000.0
        event = AccessEvent(
            id=new_id(), gate_id=gate_id, community_id=community_id, at=self._clock(), method=method,
            decision=Verdict.ACCEPT if accepted else Verdict.REJECT, reason=str(reason), person_id=person_id,
            score=score, latency_ms=latency_ms, liveness=liveness, pass_code=pass_code,
        )
        self._events.add(event, self._retention)
        self._publish("AccessEvent", _event_detail(event))
        if event.reason == GateReason.NOT_RESIDENT and community_id:
            # The registry change that should have withdrawn them was missed (a failed listener):
            # withdraw now, so a stale gallery cannot keep them.
            self._withdraw_departed(community_id, [person_id], "matched at a gate after leaving the community")
        if residency and residency.watchlisted and method is not Method.VISITOR_PASS and community_id:
            alert = WatchlistAlert(new_id(), event.id, gate_id, community_id, person_id, event.at, event.decision)
            self._events.add_alert(alert, self._retention)
            self._publish("WatchlistAlert", {"alertId": alert.id, "eventId": event.id, "gateId": gate_id,
                                             "communityId": community_id, "personId": person_id,
                                             "decision": event.decision.value, "at": event.at.isoformat()})
        return CheckResult(event)

    # -- who sees what ---------------------------------------------------------------------------

    def access_events(self, viewer: Principal, *, community_id: str | None = None, gate_id: str | None = None,
                      person_id: str | None = None, since: datetime | None = None, until: datetime | None = None,
                      limit: int, start: dict | None, purpose: str) -> Page[AccessEvent]:
        """Events by exactly one of gate, community or person, newest first, in [since, until)."""
        if sum(x is not None for x in (community_id, gate_id, person_id)) != 1:
            raise ValidationFailed.on("filter", "give exactly one of communityId, gateId, personId")
        if since and until and until <= since:
            raise ValidationFailed.on("until", "must be after since")
        if person_id is not None:
            if viewer.id != person_id and not viewer.has_any(Role.POLICE, Role.ADMIN):
                raise PermissionDenied("a person's movements are for the police and the person themselves")
            subject = ("person", person_id)
        else:
            if gate_id is not None:
                gate = self._find_device(gate_id)
                if gate is None or gate.kind is not DeviceKind.GATE:
                    raise NotFound(f"no gate {gate_id}")
                scope = gate.site_id
            else:
                scope = community_id
            self.require_watcher(viewer, scope)
            subject = ("gate", gate_id) if gate_id else ("community", community_id)
        _require_purpose(purpose)
        self._audit.record(AuditEvent.by(viewer, AuditAction.READ, f"access_events_of_{subject[0]}", subject[1], purpose))
        return self._events.page(community_id=community_id, gate_id=gate_id, person_id=person_id, since=since,
                                 until=until, limit=limit, start=start)

    def alerts(self, viewer: Principal, *, community_id: str | None, since: datetime | None, limit: int,
               start: dict | None) -> Page[WatchlistAlert]:
        _require_police(viewer)
        return self._events.alerts(community_id=community_id, since=since, limit=limit, start=start)

    def require_watcher(self, viewer: Principal, community_id: str) -> None:
        """Property management and community staff of this community, and the police, see its events."""
        if viewer.has_any(Role.POLICE, Role.ADMIN):
            return
        if viewer.has_any(Role.PROPERTY_MANAGER, Role.COMMUNITY_STAFF) and viewer.community_id == community_id:
            return
        raise PermissionDenied("access events are for this community's property management and staff, and the police")

    def watch(self, viewer: Principal, community_id: str, purpose: str) -> Callable[[], tuple[list[AccessEvent], list[WatchlistAlert]]]:
        """A poll function for a live feed of a community's events (and alerts, for the police)."""
        self.require_watcher(viewer, community_id)
        _require_purpose(purpose)
        self._audit.record(AuditEvent.by(viewer, AuditAction.READ, "access_events_of_community", community_id,
                                         purpose, live="subscription"))
        police = viewer.has_any(Role.POLICE)
        since = self._clock()
        seen: dict[str, datetime] = {}  # ids delivered within the overlap window
        repo = self._events

        def pages(fetch: Callable[[dict | None], Page]) -> list:
            items, start = [], None
            while True:
                page = fetch(start)
                items += page.items
                start = page.next_key
                if start is None or len(items) >= 1000:
                    return items

        def poll() -> tuple[list[AccessEvent], list[WatchlistAlert]]:
            nonlocal since
            # Overlap by a second: writes from other containers may land slightly out of clock order.
            window = since - timedelta(seconds=1)
            fresh = [e for e in pages(lambda start: repo.page(
                community_id=community_id, since=window, until=None, limit=100, start=start, newest_first=False))
                if e.id not in seen]
            alerts = [a for a in pages(lambda start: repo.alerts(
                community_id=community_id, since=window, limit=100, start=start, newest_first=False))
                if a.id not in seen] if police else []
            for item in (*fresh, *alerts):
                seen[item.id] = item.at
                since = max(since, item.at)
            for key in [k for k, at in seen.items() if at < since - timedelta(seconds=2)]:
                del seen[key]
            return fresh, alerts

        return poll

    # -- helpers ---------------------------------------------------------------------------------

    def _require_resident(self, person_id: str, community_id: str, field: str = "personId") -> None:
        residency = self._registries.residency([person_id]).get(person_id)
        if residency is None:
            raise ValidationFailed.on(field, f"no person {person_id} in the population registry")
        if not _lives_in(residency, community_id):
            raise ValidationFailed.on(field, f"person {person_id} is not a current resident of community {community_id}")

    def _check_consent(self, consent: ConsentInput, person_id: str, now: datetime) -> None:
        if not consent.given_by.strip():
            raise ValidationFailed.on("consent.givenBy", "name the person who consented (the resident or a guardian)")
        if consent.given_by != person_id and not self._registries.residency([consent.given_by]):
            raise ValidationFailed.on("consent.givenBy", "a guardian must be in the population registry")
        if consent.given_at.tzinfo is None:
            raise ValidationFailed.on("consent.givenAt", "needs a time zone")
        if consent.given_at > now + timedelta(minutes=5):
            raise ValidationFailed.on("consent.givenAt", "is in the future")
        if consent.given_at < now - timedelta(days=90):
            raise ValidationFailed.on("consent.givenAt", "is over 90 days old; record a fresh consent")
        if consent.method is ConsentMethod.WRITTEN and not (consent.reference or "").strip():
            raise ValidationFailed.on("consent.reference", "a written consent needs the form's reference")

    def _pin_hash(self, community_id: str, pin: str) -> str:
        return hmac.new(self._pin_key, f"{community_id}\x00{pin}".encode(), hashlib.sha256).hexdigest()


def _template_context(community_id: str, person_id: str) -> dict[str, str]:
    return {"purpose": "face-templates", "community_id": community_id, "person_id": person_id}


def _lives_in(residency: Residency | None, community_id: str | None) -> bool:
    return residency is not None and residency.active and residency.community_id == community_id


def _pass_refusal(found: VisitorPass | None, community_id: str, now: datetime) -> GateReason | None:
    if found is None:
        return GateReason.UNKNOWN_PASS
    if found.community_id != community_id:
        return GateReason.PASS_WRONG_COMMUNITY
    if found.revoked_at is not None:
        return GateReason.PASS_REVOKED
    if now < found.valid_from:
        return GateReason.PASS_NOT_YET_VALID
    if now >= found.valid_until:
        return GateReason.PASS_EXPIRED
    if found.uses >= found.max_uses:
        return GateReason.PASS_USED_UP
    return None


def _window(now: datetime, width: timedelta) -> str:
    return str(int(now.timestamp() // width.total_seconds()))


def _event_detail(event: AccessEvent) -> dict[str, Any]:
    return {"eventId": event.id, "gateId": event.gate_id, "communityId": event.community_id,
            "at": event.at.isoformat(), "method": event.method.value, "decision": event.decision.value,
            "reason": event.reason, "personId": event.person_id, "score": event.score,
            "latencyMs": event.latency_ms}


def _require_same_person(templates: list[bytes]) -> None:
    import struct

    vectors = [struct.unpack(f"<{len(t) // 4}f", t) for t in templates]
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            if sum(a * b for a, b in zip(vectors[i], vectors[j], strict=True)) < _SAME_PERSON:
                raise ValidationFailed.on(f"photos[{j}]", f"does not look like the same person as photos[{i}]")


def _in_scope(actor: Principal, community_id: str) -> bool:
    return actor.has_any(Role.ADMIN) or actor.community_id == community_id


def _require_estate(actor: Principal, community_id: str) -> None:
    if not (actor.has_any(*_ESTATE) and _in_scope(actor, community_id)):
        raise PermissionDenied("only the community's property management enrolls residents and issues credentials")


def _require_police(viewer: Principal) -> None:
    if not viewer.has_any(Role.POLICE):
        raise PermissionDenied("watchlist alerts are for the police only")


def _require_purpose(purpose: str) -> None:
    if not purpose.strip():
        raise ValidationFailed.on("purpose", "state why (X-Purpose header): personal data is read for a reason")

