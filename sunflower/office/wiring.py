"""The office services wired together once per process (sunflower.container can hold an OfficeServices)."""

from dataclasses import dataclass

from sunflower.auth.principals import SYSTEM, Principal
from sunflower.common.clock import Clock, utc_now
from sunflower.common.settings import get_settings
from sunflower.office.calendar import WorkCalendar
from sunflower.office.documents.repository import DocumentRepository
from sunflower.office.documents.service import DocumentService
from sunflower.office.documents.storage import OfficeFiles
from sunflower.office.engine.models import Definition
from sunflower.office.engine.repository import EngineRepository
from sunflower.office.engine.service import WorkflowService
from sunflower.office.meetings.repository import MeetingRepository
from sunflower.office.meetings.service import MeetingService
from sunflower.office.org import OrgService, registry_person_check
from sunflower.office.org_repository import OrgRepository
from sunflower.office.supervision.repository import SupervisionRepository
from sunflower.office.supervision.service import SupervisionService


@dataclass(frozen=True)
class OfficeServices:
    calendar: WorkCalendar
    org: OrgService
    workflows: WorkflowService
    supervision: SupervisionService
    documents: DocumentService
    meetings: MeetingService


def build_office(
    *,
    clock: Clock = utc_now,
    registry=None,
    supervisor_department: str = "supervision-office",
    secretariat_department: str = "general-office",
    audit=None,
) -> OfficeServices:
    """`registry` is the population registry's RegistryService, to check links of staff to Persons;
    `audit` the AuditService that records downloads of documents' attachments."""
    zone = get_settings().district_timezone
    calendar = WorkCalendar(zone)
    org = OrgService(OrgRepository(), person_check=registry_person_check(registry) if registry else None)
    workflows = WorkflowService(EngineRepository(), org, clock, zone=zone)
    supervision = SupervisionService(
        SupervisionRepository(), workflows, org, calendar, clock, supervisor_department=supervisor_department
    )
    files = OfficeFiles()
    documents = DocumentService(
        DocumentRepository(), workflows, org, supervision, files, calendar, clock,
        secretariat_department=secretariat_department, audit=audit,
    )
    meetings = MeetingService(MeetingRepository(), org, supervision, files, calendar, clock)
    return OfficeServices(calendar, org, workflows, supervision, documents, meetings)


def install_builtins(office: OfficeServices, actor: Principal = SYSTEM) -> list[Definition]:
    """Deploy each application's built-in diagram unless its latest deployed version is the same diagram.

    Idempotent (run by `sunflower office install`, the demo seed, and the container on first use).
    Each application adds its own install here.
    """
    return [office.supervision.install(actor), *office.documents.install(actor)]
