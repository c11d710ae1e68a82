"""Credit records and profiles on the embedded cloud: recording, who sees what, stored and stale profiles."""

import json
from datetime import UTC, date, datetime

import pytest
from factories import (
    FakeClock,
    audit_log,
    community_staff,
    credit_row,
    entity_row,
    new_credit_code,
    new_id_number,
    official,
    person_row,
    police,
    registry_service,
    resident,
    table_items,
    traffic_engineer,
)

from sunflower.auth.principals import SYSTEM
from sunflower.common.errors import AlreadyExists, PermissionDenied, ValidationFailed
from sunflower.container import services
from sunflower.registries.models import CreditCategory, SubjectType
from sunflower.registries.service import ImportKind, Row, RowStatus

pytestmark = pytest.mark.usefixtures("local_cloud")

PURPOSE = "credit review 2026-12"


@pytest.fixture
def registries():
    return services().registries


@pytest.fixture
def clerk():
    return official(id="clerk-1")


@pytest.fixture
def subject(registries):
    return registries.register_person(official(), person_row(name="王建国"), "register").person


@pytest.fixture
def company(registries, subject):
    return registries.register_entity(official(), entity_row(subject.id_number), "registration")


def rows(*fields: dict) -> list[Row]:
    return [Row(line, f) for line, f in enumerate(fields, start=2)]


def records(registries, viewer, subject_type, subject_id, purpose=PURPOSE):
    return registries.credit_records(viewer, subject_type, subject_id, limit=100, start=None, purpose=purpose).items


def stored_profile(subject_type: SubjectType, subject_id: str) -> dict | None:
    pk = f"SUBJECT#{subject_type.value}#{subject_id}"
    found = [i for i in table_items("registries") if i["pk"] == pk and i["sk"] == "PROFILE"]
    return json.loads(found[0]["data"]) if found else None


# --- recording ---------------------------------------------------------------------------------


def test_a_record_about_a_person_is_filed_under_them(registries, clerk, subject):
    row = credit_row(subject.id_number, "行政处罚", decision_number="平市监罚〔2025〕12号", summary="无照经营",
                     valid_until="2027-06-01")
    record = registries.add_credit_record(clerk, row, "recording penalty")
    assert (record.subject_type, record.subject_id, record.category) == (
        SubjectType.PERSON, subject.id, CreditCategory.ADMINISTRATIVE_PENALTY
    )
    assert (record.decision_number, record.decided_on, record.valid_until, record.summary) == (
        "平市监罚〔2025〕12号", date(2025, 6, 1), date(2027, 6, 1), "无照经营"
    )
    assert records(registries, SYSTEM, SubjectType.PERSON, subject.id) == [record]
    entry = [e for e in audit_log() if e["action"] == "create"][-1]
    assert (entry["action"], entry["subject_type"], entry["subject_id"], entry["purpose"]) == (
        "create", "person", subject.id, "recording penalty"
    )
    assert entry["detail"] == {"credit_record": record.id}


def test_a_record_about_an_entity_is_filed_under_it(registries, clerk, company):
    record = registries.add_credit_record(clerk, credit_row(company.credit_code, "守合同重信用"), "recording")
    assert (record.subject_type, record.subject_id) == (SubjectType.ENTITY, company.id)
    assert records(registries, resident(), SubjectType.ENTITY, company.id) == [record]


def test_a_subject_not_in_the_registries_is_refused(registries, clerk):
    with pytest.raises(ValidationFailed) as caught:
        registries.add_credit_record(clerk, credit_row(new_id_number(), "行政处罚"), "recording")
    assert "not in the population registry" in caught.value.message
    with pytest.raises(ValidationFailed) as caught:
        registries.add_credit_record(clerk, credit_row(new_credit_code(), "行政处罚"), "recording")
    assert "not in the legal-entity registry" in caught.value.message


def test_a_decision_is_recorded_once(registries, clerk, subject):
    row = credit_row(subject.id_number, "行政处罚", decision_number="平市监罚〔2025〕12号")
    registries.add_credit_record(clerk, row, "recording")
    with pytest.raises(AlreadyExists):
        registries.add_credit_record(clerk, row, "recording")
    assert len(records(registries, SYSTEM, SubjectType.PERSON, subject.id)) == 1


@pytest.mark.parametrize("actor", [police(), community_staff("pf-youxie-xingfu"), resident()], ids=str)
def test_only_officials_record_credit_information(registries, subject, actor):
    with pytest.raises(PermissionDenied):
        registries.add_credit_record(actor, credit_row(subject.id_number, "表彰"), "recording")
    with pytest.raises(PermissionDenied):
        registries.import_rows(actor, ImportKind.CREDIT, rows(credit_row(subject.id_number, "表彰")), "upload")


def test_import_of_credit_rows_is_idempotent(registries, clerk, subject, company):
    # given a spreadsheet of decisions: two valid, one repeated, one about nobody, one invalid
    penalty = credit_row(subject.id_number, "行政处罚")
    batch = rows(penalty, credit_row(company.credit_code, "表彰"), {**penalty, "summary": "again"},
                 credit_row(new_id_number(), "表彰"), credit_row(subject.id_number, "批评"))
    # when imported twice
    first = registries.import_rows(clerk, ImportKind.CREDIT, batch, "credit upload")
    entries = len(audit_log())
    second = registries.import_rows(clerk, ImportKind.CREDIT, batch, "credit upload")
    # then the second run records nothing new and audits nothing
    assert [o.status for o in first] == [RowStatus.ACCEPTED, RowStatus.ACCEPTED, RowStatus.REJECTED,
                                         RowStatus.REJECTED, RowStatus.REJECTED]
    assert first[2].reasons == ("same decision as line 2",)
    assert first[3].reasons == ("subject: not in the population registry",)
    assert first[4].reasons[0].startswith("category:")
    assert [o.status for o in second[:2]] == [RowStatus.UNCHANGED, RowStatus.UNCHANGED]
    assert len(audit_log()) == entries
    assert len(records(registries, SYSTEM, SubjectType.PERSON, subject.id)) == 1
    assert len(records(registries, SYSTEM, SubjectType.ENTITY, company.id)) == 1


def test_rows_without_a_decision_number_are_still_recorded_once(registries, clerk, subject):
    row = credit_row(subject.id_number, "欠缴", decision_number="", summary="2025年物业费")
    first = registries.import_rows(clerk, ImportKind.CREDIT, rows(row), "upload")
    second = registries.import_rows(clerk, ImportKind.CREDIT, rows(row), "upload")
    assert [first[0].status, second[0].status] == [RowStatus.ACCEPTED, RowStatus.UNCHANGED]
    assert len(records(registries, SYSTEM, SubjectType.PERSON, subject.id)) == 1


# --- reading records ---------------------------------------------------------------------------


def test_records_are_per_subject_newest_first(registries, clerk, subject):
    other = registries.register_person(clerk, person_row(), "register").person
    for decided in ("2024-01-10", "2025-09-01", "2025-02-14"):
        registries.add_credit_record(clerk, credit_row(subject.id_number, "表彰", decided_on=decided), "recording")
    registries.add_credit_record(clerk, credit_row(other.id_number, "表彰"), "recording")
    found = records(registries, SYSTEM, SubjectType.PERSON, subject.id)
    assert [r.decided_on for r in found] == [date(2025, 9, 1), date(2025, 2, 14), date(2024, 1, 10)]
    assert {r.subject_id for r in found} == {subject.id}


@pytest.fixture
def mixed(registries, clerk, subject):
    """A penalty and a red-list entry (published), arrears and a complaint (not published)."""
    for category in ("行政处罚", "红名单", "欠缴", "投诉"):
        registries.add_credit_record(clerk, credit_row(subject.id_number, category), "recording")
    return subject


def _categories(found) -> set[CreditCategory]:
    return {r.category for r in found}


ALL = {CreditCategory.ADMINISTRATIVE_PENALTY, CreditCategory.RED_LIST, CreditCategory.ARREARS, CreditCategory.COMPLAINT}
PUBLISHED = {CreditCategory.ADMINISTRATIVE_PENALTY, CreditCategory.RED_LIST}


@pytest.mark.parametrize(
    "viewer, purpose, expected",
    [
        (police(), PURPOSE, ALL),
        (official(), PURPOSE, ALL),
        (police(), "", PUBLISHED),
        (community_staff("pf-youxie-xingfu"), PURPOSE, PUBLISHED),
        (resident(), PURPOSE, PUBLISHED),
        (traffic_engineer(), PURPOSE, PUBLISHED),
        (SYSTEM, "", ALL),
    ],
    ids=str,
)
def test_unpublished_records_are_shown_only_to_the_entitled(registries, mixed, viewer, purpose, expected):
    assert _categories(records(registries, viewer, SubjectType.PERSON, mixed.id, purpose)) == expected


def test_the_subject_sees_their_own_unpublished_records(registries, mixed):
    assert _categories(records(registries, resident(id=mixed.id), SubjectType.PERSON, mixed.id, "")) == ALL


def test_records_are_read_by_the_signed_in_only(registries, mixed):
    with pytest.raises(PermissionDenied):
        records(registries, None, SubjectType.PERSON, mixed.id)


# --- profiles ----------------------------------------------------------------------------------


def test_recording_computes_and_stores_the_profile(registries, clerk, subject):
    registries.add_credit_record(clerk, credit_row(subject.id_number, "行政处罚"), "recording")
    registries.add_credit_record(clerk, credit_row(subject.id_number, "失信被执行人"), "recording")
    stored = stored_profile(SubjectType.PERSON, subject.id)
    assert (stored["grade"], stored["score"], stored["black_list"], stored["record_count"]) == ("D", 50, True, 2)
    profile = registries.credit_profiles(police(), [(SubjectType.PERSON, subject.id)], PURPOSE)[
        (SubjectType.PERSON, subject.id)
    ]
    assert (profile.grade, profile.score, profile.black_list, profile.red_list) == ("D", 50, True, False)
    assert sorted(f.points for f in profile.factors) == [-40, -10]


def test_a_subject_without_records_has_the_base_profile(registries, company):
    profile = registries.credit_profiles(resident(), [(SubjectType.ENTITY, company.id)], "")[
        (SubjectType.ENTITY, company.id)
    ]
    assert (profile.grade, profile.score, profile.factors) == ("B", 100, ())


def test_a_persons_profile_is_for_the_entitled_and_the_person_only(registries, clerk, mixed, company):
    registries.add_credit_record(clerk, credit_row(company.credit_code, "红名单"), "recording")
    wanted = [(SubjectType.PERSON, mixed.id), (SubjectType.ENTITY, company.id)]
    assert set(registries.credit_profiles(resident(), wanted, PURPOSE)) == {(SubjectType.ENTITY, company.id)}
    assert set(registries.credit_profiles(police(), wanted, "")) == {(SubjectType.ENTITY, company.id)}
    assert set(registries.credit_profiles(police(), wanted, PURPOSE)) == set(wanted)
    assert set(registries.credit_profiles(resident(id=mixed.id), wanted, "")) == set(wanted)
    assert registries.credit_profiles(resident(), wanted, "")[(SubjectType.ENTITY, company.id)].red_list


# --- profiles over time (a clock the test holds) ------------------------------------------------


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))  # 10:00 in the district


@pytest.fixture
def timed(clock):
    return registry_service(clock)


def test_a_profile_a_record_has_expired_from_is_computed_again(timed, clock, clerk):
    # given a penalty in force until 10 March
    person = timed.register_person(clerk, person_row(), "register").person
    timed.add_credit_record(clerk, credit_row(person.id_number, "行政处罚", decided_on="2026-02-01",
                                              valid_until="2026-03-10"), "recording")
    key = (SubjectType.PERSON, person.id)
    assert timed.credit_profiles(SYSTEM, [key], "")[key].score == 90
    assert stored_profile(*key)["next_change_on"] == "2026-03-11"
    # when read on its last day in force / then the stored profile stands
    clock.now = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    assert timed.credit_profiles(SYSTEM, [key], "")[key].score == 90
    assert stored_profile(*key)["computed_on"] == "2026-03-01"
    # when read the day after / then it is computed again, and stored
    clock.now = datetime(2026, 3, 11, 2, 0, tzinfo=UTC)
    fresh = timed.credit_profiles(SYSTEM, [key], "")[key]
    assert (fresh.score, fresh.grade, fresh.factors, fresh.computed_on) == (100, "B", (), date(2026, 3, 11))
    stored = stored_profile(*key)
    assert (stored["score"], stored["computed_on"], stored["next_change_on"]) == (100, "2026-03-11", None)


def test_a_profile_a_record_has_aged_out_of_is_computed_again(timed, clock, clerk, registries):
    # given a complaint decided three years before 5 March 2026
    person = timed.register_person(clerk, person_row(), "register").person
    timed.add_credit_record(clerk, credit_row(person.id_number, "投诉", decided_on="2023-03-05"), "recording")
    key = (SubjectType.PERSON, person.id)
    assert timed.credit_profiles(SYSTEM, [key], "")[key].score == 97
    # when the day it is over three years old comes (in the district: 16:00 UTC on 4 March is 5 March there)
    clock.now = datetime(2026, 3, 4, 15, 59, tzinfo=UTC)
    assert timed.credit_profiles(SYSTEM, [key], "")[key].score == 97
    clock.now = datetime(2026, 3, 4, 16, 0, tzinfo=UTC)
    # then it no longer weighs
    assert timed.credit_profiles(SYSTEM, [key], "")[key].score == 100
    assert stored_profile(*key)["computed_on"] == "2026-03-05"
