from typing import Annotated

import strawberry
from strawberry import Info

from sunflower.api.errors import (
    AlreadyExistsErrorType,
    InvalidStateErrorType,
    NotFoundErrorType,
    PermissionDeniedErrorType,
    ValidationErrorType,
    mutate,
)
from sunflower.api.permissions import roles
from sunflower.api.traffic.queries import corridor_id_of
from sunflower.api.traffic.types import CorridorType
from sunflower.traffic.service import CREATORS, ENGINEERS

_Errors = ValidationErrorType | NotFoundErrorType | PermissionDeniedErrorType | InvalidStateErrorType
CreateCorridorPayload = Annotated[CorridorType | _Errors | AlreadyExistsErrorType,
                                  strawberry.union("CreateCorridorPayload")]
PlanChangePayload = Annotated[CorridorType | _Errors, strawberry.union("TrafficPlanChangePayload")]


@strawberry.input(name="CreateCorridorInput")
class CreateCorridorInput:
    corridor_json: str = strawberry.field(
        description="The corridor as JSON: `sunflower traffic import-sumo NET.net.xml` prints one from a SUMO network."
    )
    initial_plan_json: str | None = strawberry.field(
        default=None, description="The plan its signals run now (a whole plan as JSON, e.g. import-sumo --plan-out); "
        "it is in force until the first sensor batch retimes the corridor."
    )


@strawberry.input(name="PinPlanInput")
class PinPlanInput:
    corridor_id: strawberry.ID
    version: int
    reason: str = strawberry.field(description="Why (1 to 500 characters); kept in the audit log.")


@strawberry.input(name="OverridePlanInput")
class OverridePlanInput:
    corridor_id: strawberry.ID
    plan_json: str = strawberry.field(
        description="The plan as controllers receive it (a plan's `json`, edited): per intersection id, cycle_s, "
        "offset_s and the phases in order with green_s, yellow_s and all_red_s. Minimum greens, clearances and "
        "the cycle bounds are checked as for retimed plans."
    )
    reason: str = strawberry.field(description="Why (1 to 500 characters); kept in the audit log.")


@strawberry.input(name="UnpinPlanInput")
class UnpinPlanInput:
    corridor_id: strawberry.ID
    reason: str = strawberry.field(description="Why (1 to 500 characters); kept in the audit log.")


def _corridor_after(ctx, corridor_id: str):
    """The payload of a plan change: the corridor as it now stands (the plan in force among it)."""
    return lambda _: CorridorType.of(ctx.services.traffic.corridor(ctx.require_principal(), corridor_id))


@strawberry.type
class TrafficMutations:
    @strawberry.mutation(extensions=roles(*CREATORS), description="Create a signal corridor (audited).")
    def create_corridor(self, info: Info, input: CreateCorridorInput) -> CreateCorridorPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.traffic.create_corridor(
                ctx.require_principal(), input.corridor_json, initial_plan=input.initial_plan_json,
                purpose=ctx.purpose,
            ),
            CorridorType.of,
        )

    @strawberry.mutation(
        extensions=roles(*ENGINEERS),
        description="Hold a stored plan version in force. Sensor batches keep coming in and retimed plans are kept as "
        "candidates, but the plan in force stays until unpinPlan. Audited.",
    )
    def pin_plan(self, info: Info, input: PinPlanInput) -> PlanChangePayload:
        ctx = info.context
        corridor_id = corridor_id_of(str(input.corridor_id))
        return mutate(
            lambda: ctx.services.traffic.pin(ctx.require_principal(), corridor_id, input.version, input.reason),
            _corridor_after(ctx, corridor_id),
        )

    @strawberry.mutation(
        extensions=roles(*ENGINEERS),
        description="Put a plan you wrote into force as a new version, held there until unpinPlan. Audited.",
    )
    def override_plan(self, info: Info, input: OverridePlanInput) -> PlanChangePayload:
        ctx = info.context
        corridor_id = corridor_id_of(str(input.corridor_id))
        return mutate(
            lambda: ctx.services.traffic.override(ctx.require_principal(), corridor_id, input.plan_json, input.reason),
            _corridor_after(ctx, corridor_id),
        )

    @strawberry.mutation(
        extensions=roles(*ENGINEERS),
        description="Let retiming drive the corridor again: the newest candidate plan, if any, goes into force. "
        "Audited.",
    )
    def unpin_plan(self, info: Info, input: UnpinPlanInput) -> PlanChangePayload:
        ctx = info.context
        corridor_id = corridor_id_of(str(input.corridor_id))
        return mutate(
            lambda: ctx.services.traffic.unpin(ctx.require_principal(), corridor_id, input.reason),
            _corridor_after(ctx, corridor_id),
        )
