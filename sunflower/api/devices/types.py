from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import Info, relay

from sunflower.devices.models import Device, DeviceKind, DeviceStatus

DeviceKindEnum = strawberry.enum(DeviceKind, name="DeviceKind")
DeviceStatusEnum = strawberry.enum(DeviceStatus, name="DeviceStatus")


@strawberry.type(name="Device", description="A gate, signal controller, camera or sensor that signs its requests.")
class DeviceType(relay.Node):
    id: relay.NodeID[str]
    kind: DeviceKindEnum
    name: str
    site_id: str = strawberry.field(description="The community, corridor or place it belongs to.")
    status: DeviceStatusEnum
    created_at: datetime
    secret_rotated_at: datetime
    last_seen_at: datetime | None
    firmware: str | None

    @classmethod
    def from_domain(cls, device: Device) -> "DeviceType":
        return cls(
            id=device.id,
            kind=device.kind,
            name=device.name,
            site_id=device.site_id,
            status=device.status,
            created_at=device.created_at,
            secret_rotated_at=device.secret_rotated_at,
            last_seen_at=device.last_seen_at,
            firmware=device.firmware,
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        devices = await info.context.loaders.device_by_id.load_many(list(node_ids))
        return [cls.from_domain(d) if d else None for d in devices]


@strawberry.type(name="DeviceSecretIssued", description="Shown once: store the secret in the device now.")
class DeviceSecretIssued:
    device: DeviceType
    secret: str
