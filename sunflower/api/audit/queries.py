import strawberry
from strawberry import Info, relay

from sunflower.api.audit.types import AuditEntryFilter, AuditEntryType
from sunflower.api.permissions import roles
from sunflower.api.relay import connection, page_request
from sunflower.audit.service import AuditFilter
from sunflower.auth.principals import Role


@strawberry.type
class AuditQueries:
    @strawberry.field(extensions=roles(Role.AUDITOR), description="The audit log, newest first.")
    def audit_entries(
        self,
        info: Info,
        filter: AuditEntryFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[AuditEntryType]:
        ctx = info.context
        f = filter or AuditEntryFilter()
        criteria = AuditFilter(f.subject_type, f.subject_id, f.actor, f.since, f.until)
        request = page_request(info, f"auditEntries:{criteria}", first, after)
        page = ctx.services.audit.entries(ctx.require_principal(), criteria, limit=request.limit, start=request.start)
        return connection(info, request, page, AuditEntryType.from_domain)
