import strawberry
from strawberry import Info, relay

from sunflower.api.audit.types import AuditEntryFilter, AuditEntryType
from sunflower.api.permissions import roles
from sunflower.api.relay import connection
from sunflower.audit.service import AuditFilter
from sunflower.auth.principals import Role
from sunflower.common.cursors import page_size


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
        page = ctx.services.audit.entries(
            ctx.require_principal(),
            AuditFilter(f.subject_type, f.subject_id, f.actor, f.since, f.until),
            limit=page_size(first),
            start=ctx.services.cursors.decode(after),
        )
        return connection(page, AuditEntryType.from_domain, ctx.services.cursors)
