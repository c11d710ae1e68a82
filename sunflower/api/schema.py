"""The one schema: every domain's queries and mutations merged, with limits and error masking."""

from functools import cache

import strawberry
from strawberry import relay
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from sunflower.api.audit.queries import AuditQueries
from sunflower.api.audit.types import AuditEntryType
from sunflower.api.devices.mutations import DeviceMutations
from sunflower.api.devices.queries import DeviceQueries
from sunflower.api.devices.types import DeviceType
from sunflower.api.errors import DomainErrorMasking, log_unexpected
from sunflower.api.gate.mutations import GateMutations
from sunflower.api.gate.queries import GateQueries
from sunflower.api.gate.subscriptions import GateSubscriptions
from sunflower.api.office.documents import DocumentMutations, DocumentQueries, OfficialDocumentType
from sunflower.api.office.engine import WorkflowMutations, WorkflowQueries
from sunflower.api.office.meetings import MeetingMutations, MeetingQueries, MeetingType
from sunflower.api.office.supervision import (
    SupervisionItemType,
    SupervisionMutations,
    SupervisionQueries,
)
from sunflower.api.office.types import WorkflowInstanceType
from sunflower.api.registries.imports import ImportJobType, ImportMutations, ImportQueries
from sunflower.api.registries.mutations import RegistryMutations
from sunflower.api.registries.queries import RegistryQueries
from sunflower.api.registries.types import EntityType, HouseholdType, PersonType
from sunflower.api.traffic.mutations import TrafficMutations
from sunflower.api.traffic.queries import TrafficQueries
from sunflower.api.traffic.types import CorridorType, PlanType
from sunflower.api.viewer.queries import ViewerQueries
from sunflower.common.settings import get_settings


@strawberry.type
class NodeQueries:
    node: relay.Node | None = relay.node(description="Any object by its global id; null if there is none.")


Query = merge_types(
    "Query",
    (NodeQueries, ViewerQueries, DeviceQueries, AuditQueries, RegistryQueries, ImportQueries, GateQueries,
     WorkflowQueries, SupervisionQueries, TrafficQueries, DocumentQueries, MeetingQueries),
)
Mutation = merge_types(
    "Mutation",
    (DeviceMutations, RegistryMutations, ImportMutations, GateMutations, WorkflowMutations, SupervisionMutations,
     TrafficMutations, DocumentMutations, MeetingMutations),
)
Subscription = merge_types("Subscription", (GateSubscriptions,))


class _Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:  # type: ignore[override]
        log_unexpected(errors)


@cache
def schema() -> strawberry.Schema:
    # Limits are read per request (the factories run for each operation), so settings stay live.
    return _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[DeviceType, AuditEntryType, PersonType, HouseholdType, EntityType, ImportJobType,
               WorkflowInstanceType, SupervisionItemType, CorridorType, PlanType, OfficialDocumentType, MeetingType],
        extensions=[
            lambda: QueryDepthLimiter(max_depth=get_settings().max_query_depth),
            lambda: MaxAliasesLimiter(max_alias_count=get_settings().max_aliases),
            lambda: MaxTokensLimiter(max_token_count=get_settings().max_tokens),
            DomainErrorMasking,
        ],
        config=StrawberryConfig(auto_camel_case=True),
    )


def sdl() -> str:
    return schema().as_str() + "\n"
