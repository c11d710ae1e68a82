"""Data-quality reports over the registries: completeness, likely duplicates, inconsistent records."""

from datetime import date

import pytest
from factories import (
    admin,
    auditor,
    community_staff,
    entity_row,
    new_id_number,
    official,
    person_row,
    police,
    resident,
)

from sunflower.auth.principals import SYSTEM
from sunflower.common.errors import PermissionDenied, ValidationFailed
from sunflower.container import services
from sunflower.registries.models import EntityStatus, PersonStatus
from sunflower.registries.service import ImportKind

pytestmark = pytest.mark.usefixtures("local_cloud")


@pytest.fixture
def registries():
    return services().registries


@pytest.fixture
def clerk():
    return official(id="clerk-1")


def register(registries, **fields):
    return registries.register_person(official(), person_row(**fields), "register").person


# --- persons -------------------------------------------------------------------------------------


def test_an_empty_registry_is_complete_and_clean(registries, clerk):
    report = registries.quality(clerk, ImportKind.PERSON)
    assert (report.registry, report.total, report.invalid, report.duplicates) == ("person", 0, [], [])
    assert set(report.completeness.values()) == {1.0}


def test_person_completeness_is_the_share_of_live_records_with_each_field(registries, clerk):
    # given four people: all with a current address, three with a phone, two registered, one in a household
    register(registries, household_no="H-1", relationship="户主")
    register(registries, registered_district=None, registered_detail=None)
    register(registries, phone=None, registered_district=None, registered_detail=None)
    register(registries)
    # and a fifth merged away, which does not count
    keep, duplicate = register(registries, phone=None), register(registries)
    registries.merge_persons(clerk, keep.id, duplicate.id, "duplicate")
    # when the report is made
    report = registries.quality(clerk, ImportKind.PERSON)
    # then (with the kept record, five live people) each ratio counts only live records
    assert report.total == 5
    assert report.completeness == {
        "phone": 0.8,  # the kept record took over the duplicate's phone
        "current_address": 1.0,
        "registered_address": 0.6,
        "household": 0.2,
    }


def test_people_with_the_same_name_and_birth_date_are_likely_duplicates(registries, clerk):
    born = date(1962, 10, 1)
    twins = [register(registries, name="王建国", id_number=new_id_number(born=born)) for _ in range(2)]
    register(registries, name="王建国", id_number=new_id_number(born=date(1962, 10, 2)))
    register(registries, name="王建军", id_number=new_id_number(born=born))
    trio = [register(registries, name="李秀英", id_number=new_id_number(born=date(1970, 1, 1))) for _ in range(3)]
    report = registries.quality(clerk, ImportKind.PERSON)
    assert sorted(map(sorted, report.duplicates)) == sorted([sorted(p.id for p in twins), sorted(p.id for p in trio)])


def test_a_merged_duplicate_is_no_longer_reported(registries, clerk):
    born = date(1962, 10, 1)
    keep, duplicate = (register(registries, name="王建国", id_number=new_id_number(born=born)) for _ in range(2))
    assert len(registries.quality(clerk, ImportKind.PERSON).duplicates) == 1
    registries.merge_persons(clerk, keep.id, duplicate.id, "duplicate")
    assert registries.quality(clerk, ImportKind.PERSON).duplicates == []


def test_a_current_address_without_a_community_is_reported(registries, clerk):
    lost = register(registries, current_community_id="", current_community="", current_detail="哈南三路")
    register(registries)
    assert registries.quality(clerk, ImportKind.PERSON).invalid == [(lost.id, "current_address", "has no community")]


# --- entities ------------------------------------------------------------------------------------


def test_entity_completeness(registries, clerk):
    rep = register(registries)
    registries.register_entity(clerk, entity_row(rep.id_number), "registration")
    registries.register_entity(
        clerk, entity_row(rep.id_number, industry_code="", registered_capital="", established_on=""), "registration"
    )
    registries.register_entity(
        clerk, entity_row(rep.id_number, industry_code="", address_district="", address_detail=""), "registration"
    )
    registries.register_entity(clerk, entity_row(rep.id_number), "registration")
    report = registries.quality(clerk, ImportKind.ENTITY)
    assert (report.registry, report.total) == ("entity", 4)
    assert report.completeness == {
        "industry_code": 0.5,
        "registered_capital": 0.75,
        "address": 0.75,
        "established_on": 0.75,
    }


def test_active_entities_whose_legal_representative_died_are_flagged(registries, clerk):
    # given a man representing an active and a revoked company, and a woman representing another
    rep, other = register(registries), register(registries)
    active = registries.register_entity(clerk, entity_row(rep.id_number), "registration")
    revoked = registries.register_entity(clerk, entity_row(rep.id_number, status="吊销"), "registration")
    registries.register_entity(clerk, entity_row(other.id_number), "registration")
    assert registries.quality(clerk, ImportKind.ENTITY).invalid == []
    # when the man dies
    registries.change_person_status(clerk, rep.id, PersonStatus.DECEASED, "死亡证明 2026-117", "death")
    # then only his active company is flagged
    report = registries.quality(clerk, ImportKind.ENTITY)
    assert report.invalid == [(active.id, "legal_rep", "the legal representative is deceased")]
    assert revoked.status is EntityStatus.REVOKED


def test_entities_with_the_same_name_are_likely_duplicates(registries, clerk):
    rep = register(registries)
    same = [registries.register_entity(clerk, entity_row(rep.id_number, name="平房区便民超市"), "registration").id
            for _ in range(2)]
    registries.register_entity(clerk, entity_row(rep.id_number, name="平房区便民药店"), "registration")
    assert [sorted(group) for group in registries.quality(clerk, ImportKind.ENTITY).duplicates] == [sorted(same)]


# --- who may ask ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "viewer", [police(), community_staff("pf-youxie-xingfu"), auditor(), admin(), resident()], ids=str
)
@pytest.mark.parametrize("kind", [ImportKind.PERSON, ImportKind.ENTITY])
def test_only_officials_see_quality_reports(registries, viewer, kind):
    register(registries)
    with pytest.raises(PermissionDenied):
        registries.quality(viewer, kind)


def test_the_system_may_make_quality_reports(registries):
    register(registries)
    assert registries.quality(SYSTEM, ImportKind.PERSON).total == 1


def test_there_is_no_quality_report_of_credit_records(registries, clerk):
    with pytest.raises(ValidationFailed):
        registries.quality(clerk, ImportKind.CREDIT)

