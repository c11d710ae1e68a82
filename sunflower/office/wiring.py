"""The office services wired together once per process (sunflower.container can hold an OfficeServices)."""

from dataclasses import dataclass

from sunflower.common.clock import Clock, utc_now
from sunflower.common.settings import get_settings
from sunflower.office.calendar import WorkCalendar
from sunflower.office.engine.repository import EngineRepository
from sunflower.office.engine.service import WorkflowService
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


def build_office(
    *, clock: Clock = utc_now, registry=None, supervisor_department: str = "supervision-office"
) -> OfficeServices:
    """`registry` is the population registry's RegistryService, to check links of staff to Persons."""
    zone = get_settings().district_timezone
    calendar = WorkCalendar(zone)
    org = OrgService(OrgRepository(), person_check=registry_person_check(registry) if registry else None)
    workflows = WorkflowService(EngineRepository(), org, clock, zone=zone)
    supervision = SupervisionService(
        SupervisionRepository(), workflows, org, calendar, clock, supervisor_department=supervisor_department
    )
    return OfficeServices(calendar, org, workflows, supervision)
