from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class DeviceKind(StrEnum):
    GATE = "gate"
    SIGNAL_CONTROLLER = "signal_controller"
    CAMERA = "camera"
    SENSOR = "sensor"


class DeviceStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Device:
    id: str
    kind: DeviceKind
    name: str
    site_id: str  # the community, corridor or place the device belongs to
    status: DeviceStatus
    created_at: datetime
    secret_rotated_at: datetime
    last_seen_at: datetime | None = None
    firmware: str | None = None


@dataclass(frozen=True)
class DeviceSecrets:
    """Encrypted current secret, and the previous one while its grace period lasts."""

    current: bytes
    previous: bytes | None = None
    previous_valid_until: datetime | None = None


@dataclass(frozen=True)
class IssuedSecret:
    """Returned once, at registration or rotation; never readable again."""

    device: Device
    secret: str
