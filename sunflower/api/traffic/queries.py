import strawberry
from strawberry import Info, relay

from sunflower.api.permissions import roles
from sunflower.api.relay import connection, page_request
from sunflower.api.traffic.types import CorridorType, PlanType, plan_history, status_loader
from sunflower.traffic.service import READERS

_GLOBAL_TYPE = "TrafficCorridor"


def corridor_id_of(value: str) -> str:
    """A corridor's own id, also when given as its global id (what `TrafficCorridor.id` returns)."""
    try:
        type_name, node_id = relay.from_base64(value)
    except Exception:  # noqa: BLE001 - anything that is not base64 "type:id" is a plain corridor id
        return value
    return node_id if type_name == _GLOBAL_TYPE else value


@strawberry.type
class TrafficQueries:
    @strawberry.field(
        extensions=roles(*READERS),
        description="A signal corridor by its id (or global id), with its status: flows, degree of saturation and "
        "delay per intersection, the plan in force and its green bands. Null if there is none.",
    )
    async def corridor(self, info: Info, id: strawberry.ID) -> CorridorType | None:
        status = await status_loader(info).load(corridor_id_of(str(id)))
        return CorridorType.of(status.corridor) if status else None

    @strawberry.field(extensions=roles(*READERS), description="Every signal corridor, by id.")
    def corridors(self, info: Info, first: int | None = None, after: str | None = None
                  ) -> relay.Connection[CorridorType]:
        ctx = info.context
        request = page_request(info, "corridors", first, after)
        page = ctx.services.traffic.corridors(ctx.require_principal(), limit=request.limit, start=request.start)
        return connection(info, request, page, CorridorType.of)

    @strawberry.field(extensions=roles(*READERS), description="A corridor's plan versions, newest first.")
    def plan_history(self, info: Info, corridor_id: strawberry.ID, first: int | None = None,
                     after: str | None = None) -> relay.Connection[PlanType]:
        return plan_history(info, corridor_id_of(str(corridor_id)), first, after)
