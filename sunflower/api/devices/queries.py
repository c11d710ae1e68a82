import strawberry
from strawberry import Info, relay

from sunflower.api.devices.types import DeviceKindEnum, DeviceType
from sunflower.api.permissions import roles
from sunflower.api.relay import connection
from sunflower.auth.principals import Role
from sunflower.common.cursors import page_size


@strawberry.type
class DeviceQueries:
    @strawberry.field(extensions=roles(Role.ADMIN), description="Registered devices, by kind.")
    def devices(
        self,
        info: Info,
        kind: DeviceKindEnum | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[DeviceType]:
        ctx = info.context
        page = ctx.services.devices.page(
            ctx.require_principal(), kind=kind, limit=page_size(first), start=ctx.services.cursors.decode(after)
        )
        return connection(page, DeviceType.from_domain, ctx.services.cursors)
