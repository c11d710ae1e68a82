"""Services wired once per process (per warm Lambda container), from settings."""

from dataclasses import dataclass
from functools import cache

from sunflower.audit.repository import AuditRepository
from sunflower.audit.service import AuditService
from sunflower.auth.tokens import TokenVerifier
from sunflower.aws import kms
from sunflower.common.clock import utc_now
from sunflower.common.cursors import CursorCodec
from sunflower.common.settings import get_settings
from sunflower.devices.repository import DeviceRepository
from sunflower.devices.service import DeviceService
from sunflower.registries.import_store import ImportObjects
from sunflower.registries.imports import ImportJobRepository, ImportService
from sunflower.registries.repository import (
    CreditRepository,
    EntityRepository,
    HouseholdRepository,
    PersonRepository,
)
from sunflower.registries.service import RegistryService


@dataclass(frozen=True)
class Services:
    audit: AuditService
    devices: DeviceService
    tokens: TokenVerifier
    cursors: CursorCodec
    registries: RegistryService
    imports: ImportService


@cache
def services() -> Services:
    settings = get_settings()
    audit = AuditService(AuditRepository(), utc_now)
    devices = DeviceService(
        DeviceRepository(),
        audit,
        utc_now,
        encrypt=kms.encrypt,
        decrypt=kms.decrypt,
        clock_skew_s=settings.device_clock_skew_s,
        secret_grace_s=settings.device_secret_grace_s,
    )
    tokens = TokenVerifier(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        jwks_url=settings.jwt_jwks_url,
        leeway_s=settings.jwt_leeway_s,
    )
    registries = RegistryService(
        PersonRepository(),
        HouseholdRepository(),
        EntityRepository(),
        CreditRepository(),
        audit,
        utc_now,
        settings.district_timezone,
    )
    return Services(
        audit=audit,
        devices=devices,
        tokens=tokens,
        cursors=CursorCodec(settings.cursor_secret),
        registries=registries,
        imports=ImportService(ImportJobRepository(), registries, ImportObjects(), utc_now, audit=audit),
    )
