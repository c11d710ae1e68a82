from typing import Annotated

import strawberry
from strawberry import Info, relay

from sunflower.api.devices.types import (
    DeviceKindEnum,
    DeviceSecretIssued,
    DeviceStatusEnum,
    DeviceType,
)
from sunflower.api.errors import (
    InvalidStateErrorType,
    NotFoundErrorType,
    PermissionDeniedErrorType,
    ValidationErrorType,
    mutate,
)
from sunflower.api.permissions import roles
from sunflower.auth.principals import Role
from sunflower.common.errors import NotFound
from sunflower.devices.models import IssuedSecret

RegisterDevicePayload = Annotated[
    DeviceSecretIssued | ValidationErrorType | PermissionDeniedErrorType,
    strawberry.union("RegisterDevicePayload"),
]
RotateDeviceSecretPayload = Annotated[
    DeviceSecretIssued | NotFoundErrorType | PermissionDeniedErrorType | InvalidStateErrorType,
    strawberry.union("RotateDeviceSecretPayload"),
]
SetDeviceStatusPayload = Annotated[
    DeviceType | NotFoundErrorType | PermissionDeniedErrorType,
    strawberry.union("SetDeviceStatusPayload"),
]


@strawberry.input
class RegisterDeviceInput:
    kind: DeviceKindEnum
    name: str
    site_id: str


def _issued(issued: IssuedSecret) -> DeviceSecretIssued:
    return DeviceSecretIssued(device=DeviceType.from_domain(issued.device), secret=issued.secret)


def _device_id(id: relay.GlobalID) -> str:
    if id.type_name != "Device":
        raise NotFound(f"{id} is not a device id")
    return id.node_id


@strawberry.type
class DeviceMutations:
    @strawberry.mutation(extensions=roles(Role.ADMIN), description="Register a device; returns its secret once.")
    def register_device(self, info: Info, input: RegisterDeviceInput) -> RegisterDevicePayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.devices.register(
                ctx.require_principal(), kind=input.kind, name=input.name, site_id=input.site_id
            ),
            _issued,
        )

    @strawberry.mutation(
        extensions=roles(Role.ADMIN),
        description="Issue a new secret; the old one keeps working for the grace period (24 h by default).",
    )
    def rotate_device_secret(self, info: Info, id: relay.GlobalID) -> RotateDeviceSecretPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.devices.rotate_secret(ctx.require_principal(), _device_id(id)),
            _issued,
        )

    @strawberry.mutation(extensions=roles(Role.ADMIN), description="Disable a lost or stolen device, or enable it again.")
    def set_device_status(self, info: Info, id: relay.GlobalID, status: DeviceStatusEnum) -> SetDeviceStatusPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.devices.set_status(ctx.require_principal(), _device_id(id), status),
            DeviceType.from_domain,
        )
