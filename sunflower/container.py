"""Services wired once per process (per warm Lambda container), from settings."""

import hashlib
import hmac
from dataclasses import dataclass
from functools import cache
from threading import Lock
from typing import TYPE_CHECKING

from sunflower.audit.repository import AuditRepository
from sunflower.audit.service import AuditService
from sunflower.auth.tokens import TokenVerifier
from sunflower.aws import events, kms
from sunflower.common.clock import utc_now
from sunflower.common.cursors import CursorCodec
from sunflower.common.settings import get_settings
from sunflower.devices.repository import DeviceRepository
from sunflower.devices.service import DeviceService
from sunflower.gate import modelstore
from sunflower.gate.encoder import encoder_for, face_pipeline
from sunflower.gate.galleries import GalleryCache, GalleryStore
from sunflower.gate.repository import (
    AccessEventRepository,
    CredentialRepository,
    EnrollmentRepository,
    GalleryPointers,
    PassRepository,
)
from sunflower.gate.service import GateService
from sunflower.registries.import_store import ImportObjects
from sunflower.registries.imports import ImportJobRepository, ImportService
from sunflower.registries.repository import (
    CreditRepository,
    EntityRepository,
    HouseholdRepository,
    PersonRepository,
)
from sunflower.registries.service import RegistryService
from sunflower.traffic.objects import BatchQueue, TrafficObjects
from sunflower.traffic.repository import TrafficRepository
from sunflower.traffic.service import TrafficService

if TYPE_CHECKING:
    from sunflower.office.wiring import OfficeServices

_OFFICE_LOCK = Lock()


@dataclass(frozen=True)
class Services:
    audit: AuditService
    devices: DeviceService
    tokens: TokenVerifier
    cursors: CursorCodec
    registries: RegistryService
    imports: ImportService
    gate: GateService
    traffic: TrafficService  # retiming (numpy, scipy) and diagrams (matplotlib) import only where they run

    @property
    def office(self) -> "OfficeServices":
        """The office workflows, built on first use: importing SpiffWorkflow adds ~200 ms to a cold start.

        The built-in diagrams are deployed then if the stack does not have them (or has an older one).
        """
        office = self.__dict__.get("_office")
        if office is None:
            with _OFFICE_LOCK:  # two first requests at once build (and install) it once
                office = self.__dict__.get("_office")
                if office is None:
                    office = _build_office(self.registries, self.audit)
                    object.__setattr__(self, "_office", office)
        return office


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
    gate = GateService(
        enrollments=EnrollmentRepository(),
        credentials=CredentialRepository(),
        passes=PassRepository(),
        events=AccessEventRepository(),
        galleries=(galleries := GalleryStore(GalleryPointers(), utc_now, _embedding_size())),
        cache=GalleryCache(galleries, settings.gate_gallery_refresh_s),
        registries=registries,
        audit=audit,
        clock=utc_now,
        encoder=encoder_for(settings.face_encoder_function),
        face=face_pipeline,
        publish=events.publish,
        find_device=devices.find,
        retention_days=settings.gate_event_retention_days,
        # PINs are stored as keyed hashes; the key is derived from the deployment's secret, labelled
        # so that it can never coincide with the cursor key itself.
        pin_key=hmac.new(settings.cursor_secret.encode(), b"sunflower/gate/pin/v1", hashlib.sha256).digest(),
    )
    registries.on_residency_change(gate.residency_changed)
    return Services(
        audit=audit,
        devices=devices,
        tokens=tokens,
        cursors=CursorCodec(settings.cursor_secret),
        registries=registries,
        imports=ImportService(ImportJobRepository(), registries, ImportObjects(), utc_now, audit=audit),
        gate=gate,
        traffic=TrafficService(
            TrafficRepository(), TrafficObjects(), BatchQueue(), audit, utc_now, publish=events.publish
        ),
    )


def _build_office(registries: RegistryService, audit: AuditService) -> "OfficeServices":
    from sunflower.office.wiring import build_office, install_builtins

    office = build_office(registry=registries, audit=audit)
    install_builtins(office)
    return office


def _embedding_size() -> int:
    return int(modelstore.load_manifest()["models"]["embedder"]["embedding_size"])
