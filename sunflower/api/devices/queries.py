import strawberry
from strawberry import Info, relay

from sunflower.api.devices.types import DeviceKindEnum, DeviceType
from sunflower.api.permissions import roles
from sunflower.api.relay import connection, page_request
from sunflower.auth.principals import Role


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
        request = page_request(info, f"devices:{kind}", first, after)
        page = ctx.services.devices.page(ctx.require_principal(), kind=kind, limit=request.limit, start=request.start)
        return connection(info, request, page, DeviceType.from_domain)
