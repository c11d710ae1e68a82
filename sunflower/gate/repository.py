"""Everything the gate keeps, in the `gate` table. Key prefixes live here and only here.

    COMMUNITY#c / ENROLLMENT#p        enrollment: consent, envelope-encrypted templates   gsi1 PERSON#p
    COMMUNITY#c / GALLERY             the community gallery's current version and object  gsi1 GALLERIES
    COMMUNITY#c / CARD#n              a resident card                                     gsi1 PERSON#p
    COMMUNITY#c / PIN#hmac            a resident PIN (keyed hash, never the PIN)           gsi1 PERSON#p
    PASS#code / PASS                  a visitor pass                                      gsi1 COMMUNITY#c, gsi2 PERSON#host
    GATE#g / PINFAIL#window           wrong PINs at a gate in a window (TTL)
    EVENTS#c / at#id                  an access event (TTL)                                gsi1 GATE#g, gsi2 PERSON#p
    ALERTS / at#id                    a watchlist alert (TTL)                              gsi1 ALERTS#c
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pynamodb.attributes import (
    BinaryAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.models import Model

from sunflower.aws.dynamo import overloaded_index, page_of, table_meta
from sunflower.common.cursors import Page
from sunflower.common.errors import AlreadyExists, InvalidState, NotFound
from sunflower.gate.models import (
    AccessEvent,
    Consent,
    ConsentMethod,
    Credential,
    Enrollment,
    Method,
    Verdict,
    VisitorPass,
    WatchlistAlert,
)


class _GateItem(Model):
    Meta = table_meta("gate")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi1 = overloaded_index("gsi1")
    gsi2 = overloaded_index("gsi2")
    kind = UnicodeAttribute(null=True)
    community_id = UnicodeAttribute(null=True)
    person_id = UnicodeAttribute(null=True)
    gate_id = UnicodeAttribute(null=True)
    # enrollment
    templates = BinaryAttribute(null=True, legacy_encoding=False)
    template_count = NumberAttribute(null=True)
    consent_given_by = UnicodeAttribute(null=True)
    consent_given_at = UTCDateTimeAttribute(null=True)
    consent_method = UnicodeAttribute(null=True)
    consent_recorded_by = UnicodeAttribute(null=True)
    consent_reference = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    # gallery pointer
    version = NumberAttribute(null=True)
    object_key = UnicodeAttribute(null=True)
    # credentials
    method = UnicodeAttribute(null=True)
    card_number = UnicodeAttribute(null=True)
    # visitor pass
    code = UnicodeAttribute(null=True)
    visitor_name = UnicodeAttribute(null=True)
    valid_from = UTCDateTimeAttribute(null=True)
    valid_until = UTCDateTimeAttribute(null=True)
    max_uses = NumberAttribute(null=True)
    uses = NumberAttribute(null=True)
    revoked_at = UTCDateTimeAttribute(null=True)
    # access events and alerts
    event_id = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute(null=True)
    decision = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    score = NumberAttribute(null=True)
    latency_ms = NumberAttribute(null=True)
    liveness = NumberAttribute(null=True)
    pass_code = UnicodeAttribute(null=True)
    failures = NumberAttribute(null=True)
    expires_at = TTLAttribute(null=True)


def _community(community_id: str) -> str:
    return f"COMMUNITY#{community_id}"


def _person(person_id: str) -> str:
    return f"PERSON#{person_id}"


def _stamp(at: datetime, item_id: str) -> str:
    return f"{at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{item_id}"


def _conditional(exc: PutError | UpdateError | DeleteError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


# -- enrollments ---------------------------------------------------------------------------------


def _enrollment(item: _GateItem) -> Enrollment:
    consent = Consent(item.consent_given_by, item.consent_given_at, ConsentMethod(item.consent_method),
                      item.consent_recorded_by, item.consent_reference)
    return Enrollment(item.community_id, item.person_id, int(item.template_count), consent, item.created_at,
                      item.created_by)


class EnrollmentRepository:
    def save(self, enrollment: Enrollment, sealed_templates: bytes) -> None:
        """Create or replace a person's enrollment in a community (re-enrolling replaces the photos)."""
        c = enrollment.consent
        _GateItem(
            _community(enrollment.community_id), f"ENROLLMENT#{enrollment.person_id}", kind="enrollment",
            gsi1pk=_person(enrollment.person_id), gsi1sk=f"ENROLLMENT#{enrollment.community_id}",
            community_id=enrollment.community_id, person_id=enrollment.person_id,
            templates=sealed_templates, template_count=enrollment.template_count,
            consent_given_by=c.given_by, consent_given_at=c.given_at, consent_method=c.method.value,
            consent_recorded_by=c.recorded_by, consent_reference=c.reference,
            created_at=enrollment.enrolled_at, created_by=enrollment.enrolled_by,
        ).save()

    def get(self, community_id: str, person_id: str) -> Enrollment | None:
        try:
            return _enrollment(_GateItem.get(_community(community_id), f"ENROLLMENT#{person_id}", consistent_read=True))
        except _GateItem.DoesNotExist:
            return None

    def sealed_templates(self, community_id: str) -> list[tuple[str, bytes]]:
        """Every enrolled person of a community with their sealed templates (to rebuild a gallery)."""
        return [(i.person_id, i.templates) for i in _GateItem.query(
            _community(community_id), _GateItem.sk.startswith("ENROLLMENT#"), consistent_read=True)]

    def of_person(self, person_id: str) -> list[Enrollment]:
        return [_enrollment(i) for i in _GateItem.gsi1.query(_person(person_id), _GateItem.gsi1sk.startswith("ENROLLMENT#"))]

    def page(self, community_id: str, *, limit: int, start: dict | None) -> Page[Enrollment]:
        result = _GateItem.query(_community(community_id), _GateItem.sk.startswith("ENROLLMENT#"),
                                 limit=limit, page_size=limit, last_evaluated_key=start)
        return page_of(result, _enrollment, ("pk", "sk"))

    def delete(self, community_id: str, person_id: str) -> bool:
        try:
            _GateItem(_community(community_id), f"ENROLLMENT#{person_id}").delete(condition=_GateItem.pk.exists())
        except DeleteError as exc:
            if _conditional(exc):
                return False
            raise
        return True


# -- gallery versions ----------------------------------------------------------------------------


class GalleryPointers:
    def current(self, community_id: str, *, consistent: bool = False) -> tuple[int, str] | None:
        """(version, object key) of the community's gallery, or None before anyone is enrolled."""
        try:
            item = _GateItem.get(_community(community_id), "GALLERY", consistent_read=consistent,
                                 attributes_to_get=["version", "object_key"])
        except _GateItem.DoesNotExist:
            return None
        return int(item.version), item.object_key

    def communities(self) -> list[str]:
        """Every community that has a gallery."""
        return [i.community_id for i in _GateItem.gsi1.query("GALLERIES")]

    def swap(self, community_id: str, expected: int, version: int, object_key: str, at: datetime) -> bool:
        """Point at a new version if the current one is still `expected` (0: none yet); False if not."""
        item = _GateItem(_community(community_id), "GALLERY", kind="gallery", community_id=community_id,
                         gsi1pk="GALLERIES", gsi1sk=community_id, version=version, object_key=object_key,
                         created_at=at)
        condition = _GateItem.pk.does_not_exist() if expected == 0 else _GateItem.version == expected
        try:
            item.save(condition=condition)
        except PutError as exc:
            if _conditional(exc):
                return False
            raise
        return True


# -- cards and PINs ------------------------------------------------------------------------------


def _credential(item: _GateItem) -> Credential:
    return Credential(item.community_id, item.person_id, Method(item.method), item.created_at, item.card_number)


class CredentialRepository:
    def add(self, credential: Credential, secret_key: str) -> None:
        """`secret_key` is the card number, or the PIN's keyed hash; unique within the community."""
        prefix = "CARD" if credential.method is Method.CARD else "PIN"
        item = _GateItem(
            _community(credential.community_id), f"{prefix}#{secret_key}", kind=credential.method.value,
            gsi1pk=_person(credential.person_id), gsi1sk=f"{prefix}#{credential.community_id}#{secret_key}",
            community_id=credential.community_id, person_id=credential.person_id, method=credential.method.value,
            card_number=credential.card_number, created_at=credential.issued_at,
        )
        try:
            item.save(condition=_GateItem.pk.does_not_exist())
        except PutError as exc:
            if _conditional(exc):
                what = "card" if credential.method is Method.CARD else "PIN"
                raise AlreadyExists(f"this {what} is already in use in the community; choose another") from None
            raise

    def find(self, community_id: str, method: Method, secret_key: str) -> Credential | None:
        prefix = "CARD" if method is Method.CARD else "PIN"
        try:
            return _credential(_GateItem.get(_community(community_id), f"{prefix}#{secret_key}"))
        except _GateItem.DoesNotExist:
            return None

    def remove_of_person(self, person_id: str, community_id: str | None = None, method: Method | None = None) -> int:
        """Remove a person's cards and PINs (in one community, of one kind); how many were removed."""
        removed = 0
        for item in _GateItem.gsi1.query(_person(person_id)):
            if item.kind not in (Method.CARD.value, Method.PIN.value):
                continue
            if (community_id and item.community_id != community_id) or (method and item.method != method.value):
                continue
            _GateItem(item.pk, item.sk).delete()
            removed += 1
        return removed

    def of_person(self, person_id: str) -> list[Credential]:
        return [_credential(i) for i in _GateItem.gsi1.query(_person(person_id))
                if i.kind in (Method.CARD.value, Method.PIN.value)]

    def count_failure(self, gate_id: str, window: str, expires_at: datetime) -> int:
        """Count one wrong PIN at a gate in a time window; the count so far."""
        item = _GateItem(f"GATE#{gate_id}", f"PINFAIL#{window}")
        item.update(actions=[_GateItem.failures.add(1), _GateItem.expires_at.set(expires_at)])
        return int(item.failures)

    def failures(self, gate_id: str, window: str) -> int:
        try:
            return int(_GateItem.get(f"GATE#{gate_id}", f"PINFAIL#{window}").failures or 0)
        except _GateItem.DoesNotExist:
            return 0


# -- visitor passes ------------------------------------------------------------------------------


def _pass(item: _GateItem) -> VisitorPass:
    return VisitorPass(item.code, item.community_id, item.person_id, item.visitor_name, item.valid_from,
                       item.valid_until, int(item.max_uses), int(item.uses or 0), item.created_by, item.created_at,
                       item.revoked_at)


class PassRepository:
    def add(self, visitor_pass: VisitorPass, keep_until: datetime) -> None:
        p = visitor_pass
        item = _GateItem(
            f"PASS#{p.code}", "PASS", kind="pass", code=p.code, community_id=p.community_id, person_id=p.host_person_id,
            gsi1pk=_community(p.community_id), gsi1sk=f"PASS#{_stamp(p.valid_from, p.code)}",
            gsi2pk=_person(p.host_person_id), gsi2sk=f"PASS#{_stamp(p.valid_from, p.code)}",
            visitor_name=p.visitor_name, valid_from=p.valid_from, valid_until=p.valid_until, max_uses=p.max_uses,
            uses=0, created_by=p.issued_by, created_at=p.issued_at, expires_at=keep_until,
        )
        try:
            item.save(condition=_GateItem.pk.does_not_exist())
        except PutError as exc:
            if _conditional(exc):
                raise AlreadyExists("pass code collision; issue again") from None
            raise

    def get(self, code: str) -> VisitorPass | None:
        try:
            return _pass(_GateItem.get(f"PASS#{code}", "PASS", consistent_read=True))
        except _GateItem.DoesNotExist:
            return None

    def use(self, visitor_pass: VisitorPass, at: datetime) -> bool:
        """Count one use if the pass is still usable at `at`; False if someone used it up meanwhile."""
        item = _GateItem(f"PASS#{visitor_pass.code}", "PASS")
        try:
            item.update(
                actions=[_GateItem.uses.add(1)],
                condition=(_GateItem.uses < _GateItem.max_uses) & _GateItem.revoked_at.does_not_exist()
                & (_GateItem.valid_from <= at) & (_GateItem.valid_until > at),
            )
        except UpdateError as exc:
            if _conditional(exc):
                return False
            raise
        return True

    def revoke(self, code: str, at: datetime) -> VisitorPass:
        item = _GateItem(f"PASS#{code}", "PASS")
        try:
            item.update(actions=[_GateItem.revoked_at.set(at)], condition=_GateItem.pk.exists())
        except UpdateError as exc:
            if _conditional(exc):
                raise NotFound(f"no visitor pass {code}") from None
            raise
        return _pass(item)

    def page(self, *, community_id: str | None = None, host_person_id: str | None = None, limit: int,
             start: dict | None) -> Page[VisitorPass]:
        if community_id:
            index, key, attrs = _GateItem.gsi1, _community(community_id), ("pk", "sk", "gsi1pk", "gsi1sk")
            condition = _GateItem.gsi1sk.startswith("PASS#")
        elif host_person_id:
            index, key, attrs = _GateItem.gsi2, _person(host_person_id), ("pk", "sk", "gsi2pk", "gsi2sk")
            condition = _GateItem.gsi2sk.startswith("PASS#")
        else:
            raise InvalidState("passes are listed by community or by host")
        result = index.query(key, condition, scan_index_forward=False, limit=limit, page_size=limit,
                             last_evaluated_key=start)
        return page_of(result, _pass, attrs)


# -- access events and alerts --------------------------------------------------------------------


def _event(item: _GateItem) -> AccessEvent:
    return AccessEvent(
        id=item.event_id, gate_id=item.gate_id, community_id=item.community_id, at=item.at,
        method=Method(item.method), decision=Verdict(item.decision), reason=item.reason, person_id=item.person_id,
        score=item.score, latency_ms=item.latency_ms, liveness=item.liveness, pass_code=item.pass_code,
    )


def _alert(item: _GateItem) -> WatchlistAlert:
    return WatchlistAlert(item.code, item.event_id, item.gate_id, item.community_id, item.person_id, item.at,
                          Verdict(item.decision))


class AccessEventRepository:
    def add(self, event: AccessEvent, retention: timedelta) -> None:
        stamp = _stamp(event.at, event.id)
        item = _GateItem(
            f"EVENTS#{event.community_id or '-'}", stamp, kind="event",
            gsi1pk=f"GATE#{event.gate_id}", gsi1sk=stamp,
            gsi2pk=_person(event.person_id) if event.person_id else None,
            gsi2sk=stamp if event.person_id else None,
            event_id=event.id, gate_id=event.gate_id, community_id=event.community_id, at=event.at,
            method=event.method.value, decision=event.decision.value, reason=event.reason,
            person_id=event.person_id, score=event.score, latency_ms=event.latency_ms, liveness=event.liveness,
            pass_code=event.pass_code, expires_at=event.at + retention,
        )
        item.save()

    def add_alert(self, alert: WatchlistAlert, retention: timedelta) -> None:
        stamp = _stamp(alert.at, alert.id)
        _GateItem(
            "ALERTS", stamp, kind="alert", gsi1pk=f"ALERTS#{alert.community_id}", gsi1sk=stamp,
            code=alert.id, event_id=alert.event_id, gate_id=alert.gate_id, community_id=alert.community_id,
            person_id=alert.person_id, at=alert.at, decision=alert.decision.value, expires_at=alert.at + retention,
        ).save()

    def page(self, *, community_id: str | None = None, gate_id: str | None = None, person_id: str | None = None,
             since: datetime | None, until: datetime | None, limit: int, start: dict | None,
             newest_first: bool = True) -> Page[AccessEvent]:
        if gate_id:
            query, key, attrs, sk = _GateItem.gsi1.query, f"GATE#{gate_id}", ("pk", "sk", "gsi1pk", "gsi1sk"), _GateItem.gsi1sk
        elif person_id:
            query, key, attrs, sk = _GateItem.gsi2.query, _person(person_id), ("pk", "sk", "gsi2pk", "gsi2sk"), _GateItem.gsi2sk
        elif community_id:
            query, key, attrs, sk = _GateItem.query, f"EVENTS#{community_id}", ("pk", "sk"), _GateItem.sk
        else:
            raise InvalidState("access events are listed by gate, person or community")
        low = _stamp(since, "") if since else "0"
        high = _stamp(until, "") if until else "9"
        result = query(key, sk.between(low, high), scan_index_forward=not newest_first, limit=limit,
                       page_size=limit, last_evaluated_key=start)
        return page_of(result, _event, attrs)

    def alerts(self, *, community_id: str | None, since: datetime | None, limit: int,
               start: dict | None, newest_first: bool = True) -> Page[WatchlistAlert]:
        low = _stamp(since, "") if since else "0"
        if community_id:
            result = _GateItem.gsi1.query(f"ALERTS#{community_id}", _GateItem.gsi1sk >= low,
                                          scan_index_forward=not newest_first, limit=limit, page_size=limit,
                                          last_evaluated_key=start)
            return page_of(result, _alert, ("pk", "sk", "gsi1pk", "gsi1sk"))
        result = _GateItem.query("ALERTS", _GateItem.sk >= low, scan_index_forward=not newest_first, limit=limit,
                                 page_size=limit, last_evaluated_key=start)
        return page_of(result, _alert, ("pk", "sk"))
