"""Register devices, rotate their secrets and authenticate their signed requests."""

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sunflower.audit.models import AuditAction, AuditEvent
from sunflower.audit.service import AuditService
from sunflower.auth import device_signature
from sunflower.auth.principals import Principal, Role
from sunflower.common.clock import Clock
from sunflower.common.cursors import Page
from sunflower.common.errors import NotFound, PermissionDenied, Unauthenticated, ValidationFailed
from sunflower.common.ids import new_id
from sunflower.devices.models import Device, DeviceKind, DeviceSecrets, DeviceStatus, IssuedSecret
from sunflower.devices.repository import DeviceRepository

Encrypt = Callable[[bytes, dict[str, str]], bytes]
Decrypt = Callable[[bytes, dict[str, str]], bytes]


class DeviceRejected(Unauthenticated):
    """A device request that did not authenticate; `reason` is stable (UNSIGNED, CLOCK_SKEW,
    UNKNOWN_DEVICE, BAD_SIGNATURE, DISABLED, REPLAYED), the message says what to fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DeviceService:
    def __init__(
        self,
        repository: DeviceRepository,
        audit: AuditService,
        clock: Clock,
        *,
        encrypt: Encrypt,
        decrypt: Decrypt,
        clock_skew_s: int,
        secret_grace_s: int,
    ) -> None:
        self._repo = repository
        self._audit = audit
        self._clock = clock
        self._encrypt = encrypt
        # Decrypting is a KMS call: warm containers remember what they decrypted.
        self._decrypt = lru_cache(maxsize=4096)(lambda blob, device_id: decrypt(blob, {"device_id": device_id}))
        self._skew = timedelta(seconds=clock_skew_s)
        self._grace = timedelta(seconds=secret_grace_s)

    # --- administration -------------------------------------------------------------------

    def register(self, admin: Principal, *, kind: DeviceKind, name: str, site_id: str) -> IssuedSecret:
        _require_admin(admin)
        name, site_id = name.strip(), site_id.strip()
        if not name or len(name) > 120:
            raise ValidationFailed.on("name", "must be 1 to 120 characters")
        if not site_id or len(site_id) > 120:
            raise ValidationFailed.on("siteId", "must name the community, corridor or place, 1 to 120 characters")
        now = self._clock()
        device = Device(new_id(), kind, name, site_id, DeviceStatus.ACTIVE, now, now)
        secret = _new_secret()
        self._audit.record(_admin_event(admin, AuditAction.CREATE, device.id, "register device"))
        self._repo.add(device, DeviceSecrets(self._seal(device.id, secret)))
        return IssuedSecret(device, secret)

    def rotate_secret(self, admin: Principal, device_id: str) -> IssuedSecret:
        """A new secret; the old one keeps working for the grace period so the device can be updated."""
        _require_admin(admin)
        _, old = self._repo.get_with_secrets(device_id)
        now = self._clock()
        secret = _new_secret()
        self._audit.record(_admin_event(admin, AuditAction.UPDATE, device_id, "rotate device secret"))
        device = self._repo.replace_secret(
            device_id, DeviceSecrets(self._seal(device_id, secret), old.current, now + self._grace), now
        )
        return IssuedSecret(device, secret)

    def set_status(self, admin: Principal, device_id: str, status: DeviceStatus) -> Device:
        _require_admin(admin)
        self._repo.get(device_id)
        self._audit.record(_admin_event(admin, AuditAction.UPDATE, device_id, f"set device {status.value}"))
        return self._repo.set_status(device_id, status)

    def page(self, viewer: Principal, *, kind: DeviceKind | None, limit: int, start: dict | None) -> Page[Device]:
        _require_admin(viewer)
        return self._repo.page(kind=kind, limit=limit, start=start)

    def get_many(self, viewer: Principal, device_ids: list[str]) -> dict[str, Device]:
        _require_admin(viewer)
        return self._repo.get_many(device_ids)

    # --- signed requests --------------------------------------------------------------------

    def authenticate(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Device:
        """The device that signed this request, or Unauthenticated saying what is wrong with it."""
        missing = [h for h in device_signature.HEADERS if not headers.get(h)]
        if missing:
            raise DeviceRejected("UNSIGNED", f"unsigned device request: missing header(s) {', '.join(missing)}")
        device_id = headers[device_signature.DEVICE_ID]
        timestamp, nonce = headers[device_signature.TIMESTAMP], headers[device_signature.NONCE]
        signed_at = _parse_timestamp(timestamp)
        now = self._clock()
        if abs(now - signed_at) > self._skew:
            raise DeviceRejected(
                "CLOCK_SKEW",
                f"request timestamp is {abs(now - signed_at).total_seconds():.0f} s from server time; "
                f"at most {self._skew.total_seconds():.0f} s is accepted (check the device clock)"
            )
        if not 16 <= len(nonce) <= 64:
            raise DeviceRejected("UNSIGNED", "nonce must be 16 to 64 characters")
        try:
            device, stored = self._repo.get_with_secrets(device_id)
        except NotFound:
            raise DeviceRejected("UNKNOWN_DEVICE", f"unknown device {device_id}") from None
        args = (method, path, timestamp, nonce, body)
        signature = headers[device_signature.SIGNATURE]
        valid = device_signature.matches(self._open(device_id, stored.current), signature, *args) or (
            stored.previous is not None
            and stored.previous_valid_until is not None
            and now < stored.previous_valid_until
            and device_signature.matches(self._open(device_id, stored.previous), signature, *args)
        )
        if not valid:
            raise DeviceRejected("BAD_SIGNATURE", "device signature does not match (wrong secret, or body/path changed in transit)")
        if device.status is not DeviceStatus.ACTIVE:
            raise DeviceRejected("DISABLED", f"device {device_id} is {device.status.value}")
        if not self._repo.claim_nonce(device_id, nonce, signed_at + 2 * self._skew):
            raise DeviceRejected("REPLAYED", "replayed request: this nonce was already used")
        return device

    def find(self, device_id: str) -> Device | None:
        """A device by id for system use (gates resolving their community); None if unknown."""
        try:
            return self._repo.get(device_id)
        except NotFound:
            return None

    def heartbeat(self, device: Device, firmware: str | None) -> datetime:
        if firmware is not None and len(firmware) > 64:
            raise ValidationFailed.on("firmware", "at most 64 characters")
        seen = self._clock()
        self._repo.touch(device.id, seen, firmware)
        return seen

    def _seal(self, device_id: str, secret: str) -> bytes:
        return self._encrypt(secret.encode(), {"device_id": device_id})

    def _open(self, device_id: str, blob: bytes) -> str:
        return self._decrypt(blob, device_id).decode()


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def _parse_timestamp(value: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError):
        raise DeviceRejected("UNSIGNED", f"{device_signature.TIMESTAMP} must be Unix seconds, got {value[:32]!r}") from None


def _require_admin(principal: Principal) -> None:
    if not principal.has_any(Role.ADMIN):
        raise PermissionDenied("only administrators manage devices")


def _admin_event(admin: Principal, action: AuditAction, device_id: str, purpose: str) -> AuditEvent:
    return AuditEvent.by(admin, action, "device", device_id, purpose)
