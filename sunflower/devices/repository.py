"""Devices and their used nonces in the `devices` table. Key prefixes live here and only here."""

from datetime import UTC, datetime

from pynamodb.attributes import (
    BinaryAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from sunflower.aws.dynamo import page_of, table_meta
from sunflower.common.cursors import Page
from sunflower.common.errors import AlreadyExists, InvalidState, NotFound
from sunflower.devices.models import Device, DeviceKind, DeviceSecrets, DeviceStatus

_LISTING = "DEVICE"


class _ByKind(GlobalSecondaryIndex):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class _DeviceItem(Model):
    Meta = table_meta("devices")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_kind = _ByKind()
    device_id = UnicodeAttribute(null=True)
    kind = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    site_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)
    secret_rotated_at = UTCDateTimeAttribute(null=True)
    last_seen_at = UTCDateTimeAttribute(null=True)
    firmware = UnicodeAttribute(null=True)
    secret = BinaryAttribute(null=True, legacy_encoding=False)
    previous_secret = BinaryAttribute(null=True, legacy_encoding=False)
    previous_valid_until = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


def _device_key(device_id: str) -> tuple[str, str]:
    return f"DEVICE#{device_id}", "DEVICE"


def _to_domain(item: _DeviceItem) -> Device:
    return Device(
        id=item.device_id,
        kind=DeviceKind(item.kind),
        name=item.name,
        site_id=item.site_id,
        status=DeviceStatus(item.status),
        created_at=item.created_at,
        secret_rotated_at=item.secret_rotated_at,
        last_seen_at=item.last_seen_at,
        firmware=item.firmware,
    )


class DeviceRepository:
    def add(self, device: Device, secrets: DeviceSecrets) -> None:
        pk, sk = _device_key(device.id)
        item = _DeviceItem(
            pk,
            sk,
            gsi1pk=_LISTING,
            gsi1sk=f"{device.kind.value}#{device.id}",
            device_id=device.id,
            kind=device.kind.value,
            name=device.name,
            site_id=device.site_id,
            status=device.status.value,
            created_at=device.created_at,
            secret_rotated_at=device.secret_rotated_at,
            secret=secrets.current,
        )
        try:
            item.save(condition=_DeviceItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise AlreadyExists(f"device {device.id} is already registered") from None
            raise

    def _item(self, device_id: str) -> _DeviceItem:
        try:
            return _DeviceItem.get(*_device_key(device_id), consistent_read=True)
        except _DeviceItem.DoesNotExist:
            raise NotFound(f"no device {device_id}") from None

    def get(self, device_id: str) -> Device:
        return _to_domain(self._item(device_id))

    def get_with_secrets(self, device_id: str) -> tuple[Device, DeviceSecrets]:
        item = self._item(device_id)
        return _to_domain(item), DeviceSecrets(item.secret, item.previous_secret, item.previous_valid_until)

    def get_many(self, device_ids: list[str]) -> dict[str, Device]:
        keys = [_device_key(i) for i in dict.fromkeys(device_ids)]
        return {item.device_id: _to_domain(item) for item in _DeviceItem.batch_get(keys)}

    def page(self, *, kind: DeviceKind | None, limit: int, start: dict | None) -> Page[Device]:
        condition = _DeviceItem.gsi1sk.startswith(f"{kind.value}#") if kind else None
        result = _DeviceItem.by_kind.query(
            _LISTING, condition, limit=limit, last_evaluated_key=start, page_size=limit
        )
        return page_of(result, _to_domain, ("pk", "sk", "gsi1pk", "gsi1sk"))

    def replace_secret(self, device_id: str, secrets: DeviceSecrets, rotated_at: datetime) -> Device:
        item = self._item(device_id)
        try:
            item.update(
                actions=[
                    _DeviceItem.secret.set(secrets.current),
                    _DeviceItem.previous_secret.set(secrets.previous),
                    _DeviceItem.previous_valid_until.set(secrets.previous_valid_until),
                    _DeviceItem.secret_rotated_at.set(rotated_at),
                ],
                # the secret this rotation replaces must still be the current one
                condition=_DeviceItem.secret == secrets.previous,
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise InvalidState(f"device {device_id} was rotated by someone else meanwhile; rotate again") from None
            raise
        return _to_domain(item)

    def set_status(self, device_id: str, status: DeviceStatus) -> Device:
        item = self._item(device_id)
        item.update(actions=[_DeviceItem.status.set(status.value)])
        return _to_domain(item)

    def touch(self, device_id: str, seen_at: datetime, firmware: str | None) -> None:
        actions = [_DeviceItem.last_seen_at.set(seen_at)]
        if firmware:
            actions.append(_DeviceItem.firmware.set(firmware))
        _DeviceItem(*_device_key(device_id)).update(actions=actions, condition=_DeviceItem.pk.exists())

    def claim_nonce(self, device_id: str, nonce: str, expires_at: datetime) -> bool:
        """Record a nonce; False if this device already used it."""
        item = _DeviceItem(f"NONCE#{device_id}#{nonce}", "NONCE", expires_at=expires_at.astimezone(UTC))
        try:
            item.save(condition=_DeviceItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True
