from datetime import datetime

import strawberry
from strawberry import Info, relay

from sunflower.api.gate.mutations import ESTATE
from sunflower.api.gate.types import (
    AccessEventType,
    EnrollmentType,
    VisitorPassType,
    WatchlistAlertType,
    node_id,
)
from sunflower.api.permissions import roles, signed_in
from sunflower.api.relay import connection, page_request
from sunflower.auth.principals import Role


def _stamp(at: datetime | None) -> str:
    return at.isoformat() if at else ""


@strawberry.type
class GateQueries:
    @strawberry.field(
        extensions=signed_in(),
        description="Gate access events by exactly one of community, gate or person, newest first, "
        "in [since, until). A community's or gate's events are for its property management and staff and the "
        "police; a person's for the police and that person. Needs a purpose (X-Purpose).",
    )
    def access_events(
        self,
        info: Info,
        community_id: strawberry.ID | None = None,
        gate_id: relay.GlobalID | None = None,
        person_id: relay.GlobalID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[AccessEventType]:
        ctx = info.context
        gate = node_id(gate_id, "Device", "gateId") if gate_id else None
        person = node_id(person_id, "Person", "personId") if person_id else None
        request = page_request(
            info, f"accessEvents:{community_id}:{gate}:{person}:{_stamp(since)}:{_stamp(until)}", first, after
        )
        page = ctx.services.gate.access_events(
            ctx.require_principal(),
            community_id=str(community_id) if community_id is not None else None,
            gate_id=gate,
            person_id=person,
            since=since,
            until=until,
            limit=request.limit,
            start=request.start,
            purpose=ctx.purpose,
        )
        return connection(info, request, page, AccessEventType.from_domain)

    @strawberry.field(
        extensions=roles(Role.POLICE),
        description="Watchlisted persons at the gates, newest first; all communities when communityId is left out.",
    )
    def watchlist_alerts(
        self,
        info: Info,
        community_id: strawberry.ID | None = None,
        since: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[WatchlistAlertType]:
        ctx = info.context
        request = page_request(info, f"watchlistAlerts:{community_id}:{_stamp(since)}", first, after)
        page = ctx.services.gate.alerts(
            ctx.require_principal(),
            community_id=str(community_id) if community_id is not None else None,
            since=since,
            limit=request.limit,
            start=request.start,
        )
        return connection(info, request, page, WatchlistAlertType.from_domain)

    @strawberry.field(extensions=roles(*ESTATE), description="The residents enrolled for a community's face gates.")
    def gate_enrollments(
        self, info: Info, community_id: strawberry.ID, first: int | None = None, after: str | None = None
    ) -> relay.Connection[EnrollmentType]:
        ctx = info.context
        request = page_request(info, f"gateEnrollments:{community_id}", first, after)
        page = ctx.services.gate.enrollments(
            ctx.require_principal(), str(community_id), limit=request.limit, start=request.start
        )
        return connection(info, request, page, EnrollmentType.from_domain)

    @strawberry.field(
        extensions=signed_in(),
        description="One resident's enrollment (yours when personId is left out); null if not enrolled.",
    )
    def gate_enrollment(
        self, info: Info, community_id: strawberry.ID, person_id: relay.GlobalID | None = None
    ) -> EnrollmentType | None:
        ctx = info.context
        viewer = ctx.require_principal()
        person = node_id(person_id, "Person", "personId") if person_id else viewer.id
        enrollment = ctx.services.gate.enrollment(viewer, str(community_id), person)
        return EnrollmentType.from_domain(enrollment) if enrollment else None

    @strawberry.field(
        extensions=signed_in(),
        description="Visitor passes of a community (its property management), or without communityId "
        "the passes you issued as host; newest first.",
    )
    def visitor_passes(
        self, info: Info, community_id: strawberry.ID | None = None, first: int | None = None, after: str | None = None
    ) -> relay.Connection[VisitorPassType]:
        ctx = info.context
        viewer = ctx.require_principal()
        scope = f"community:{community_id}" if community_id else f"host:{viewer.id}"
        request = page_request(info, f"visitorPasses:{scope}", first, after)
        page = ctx.services.gate.passes(
            viewer,
            community_id=str(community_id) if community_id else None,
            limit=request.limit,
            start=request.start,
        )
        return connection(info, request, page, VisitorPassType.from_domain)
