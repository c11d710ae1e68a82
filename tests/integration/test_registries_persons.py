"""The population registry on the embedded cloud: import, households, changes, merging, search, audit."""

import json
from datetime import UTC, date, datetime

import pytest
from factories import (
    FakeClock,
    audit_log,
    community_staff,
    credit_row,
    entity_row,
    new_id_number,
    official,
    person_row,
    police,
    property_manager,
    registry_service,
    resident,
    table_items,
    traffic_engineer,
)

from sunflower.audit.models import AuditAction
from sunflower.auth.principals import SYSTEM
from sunflower.common.errors import (
    AlreadyExists,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from sunflower.container import services
from sunflower.registries.access import mask_id_number
from sunflower.registries.identifiers import Sex
from sunflower.registries.models import PersonStatus, Relationship, SubjectType
from sunflower.registries.repository import PersonRepository
from sunflower.registries.service import ImportKind, Row, RowStatus

pytestmark = pytest.mark.usefixtures("local_cloud")

HOME = "pf-youxie-xingfu"
ELSEWHERE = "pf-xinjiang-shengli"
PURPOSE = "case 2026-031 identity check"


@pytest.fixture
def registries():
    return services().registries


@pytest.fixture
def clerk():
    return official(id="clerk-1")


def rows(*fields: dict) -> list[Row]:
    """Spreadsheet rows; line 1 is the header, so data starts at line 2."""
    return [Row(line, f) for line, f in enumerate(fields, start=2)]


def register(registries, **fields):
    return registries.register_person(official(), person_row(**fields), "register").person


def registry_items(prefix: str) -> list[dict]:
    return [i for i in table_items("registries") if i["pk"].startswith(prefix)]


def assert_every_row_whole():
    """Each person has exactly its id-number claim pointing at it, and each claim its person."""
    persons = {i["pk"].removeprefix("PERSON#"): i for i in registry_items("PERSON#")}
    claims = {i["pk"].removeprefix("IDNO#"): i["ref"] for i in registry_items("IDNO#")}
    assert sorted(claims.values()) == sorted(persons)
    for number, person_id in claims.items():
        assert json.loads(persons[person_id]["data"])["id_number"] == number


# --- import -------------------------------------------------------------------------------------


def test_import_accepts_valid_rows_and_rejects_invalid_ones_with_reasons(registries, clerk):
    # given two valid rows and one wrong in two fields
    good1, good2 = person_row(name="王建国"), person_row(name="李秀英")
    bad = person_row(name="", phone="12345")
    # when imported
    outcomes = registries.import_rows(clerk, ImportKind.PERSON, rows(good1, bad, good2), "2026 census upload")
    # then each row has its outcome, on its own line
    assert [(o.line, o.status) for o in outcomes] == [
        (2, RowStatus.ACCEPTED), (3, RowStatus.REJECTED), (4, RowStatus.ACCEPTED)
    ]
    assert sorted(r.split(":")[0] for r in outcomes[1].reasons) == ["name", "phone"]
    assert outcomes[1].record_id is None
    # and the accepted are stored as given
    stored = registries.person(SYSTEM, outcomes[0].record_id, "check")
    assert (stored.person.name, stored.person.id_number) == ("王建国", good1["id_number"])
    assert stored.person.current_address.community_id == HOME
    assert len(registry_items("PERSON#")) == 2
    assert_every_row_whole()


def test_import_audits_each_created_person_with_the_purpose(registries, clerk):
    outcomes = registries.import_rows(clerk, ImportKind.PERSON, rows(person_row(), person_row()), "2026 census upload")
    log = audit_log()
    assert [(e["action"], e["subject_id"], e["purpose"], e["actor"]) for e in log] == [
        (AuditAction.CREATE.value, o.record_id, "2026 census upload", "person:clerk-1") for o in outcomes
    ]


def test_the_same_person_twice_in_one_batch_is_rejected_the_second_time(registries, clerk):
    row = person_row()
    again = {**row, "name": row["name"] + "二"}
    outcomes = registries.import_rows(clerk, ImportKind.PERSON, rows(row, person_row(), again), "upload")
    assert [o.status for o in outcomes] == [RowStatus.ACCEPTED, RowStatus.ACCEPTED, RowStatus.REJECTED]
    assert outcomes[2].reasons == ("id_number: same person as line 2",)
    assert len(registry_items("PERSON#")) == 2


def test_importing_the_same_rows_again_changes_nothing_and_audits_nothing(registries, clerk):
    # given an imported spreadsheet, with a household
    batch = rows(
        person_row(household_no="H-1", relationship="户主"),
        person_row(household_no="H-1", relationship="配偶"),
        person_row(name=""),
    )
    first = registries.import_rows(clerk, ImportKind.PERSON, batch, "upload")
    entries_before, items_before = len(audit_log()), table_items("registries")
    # when the same spreadsheet is uploaded again
    second = registries.import_rows(clerk, ImportKind.PERSON, batch, "upload")
    # then the rows are unchanged, naming the same records, and nothing new is written or audited
    assert [o.status for o in second] == [RowStatus.UNCHANGED, RowStatus.UNCHANGED, RowStatus.REJECTED]
    assert [o.record_id for o in second[:2]] == [o.record_id for o in first[:2]]
    assert len(audit_log()) == entries_before
    assert sorted(map(str, table_items("registries"))) == sorted(map(str, items_before))


def test_reimporting_a_changed_row_updates_the_person(registries, clerk):
    row = person_row(phone="13812345678")
    [created] = registries.import_rows(clerk, ImportKind.PERSON, rows(row), "upload")
    [updated] = registries.import_rows(clerk, ImportKind.PERSON, rows({**row, "phone": "13987654321"}), "upload")
    assert (updated.status, updated.record_id) == (RowStatus.ACCEPTED, created.record_id)
    assert (audit_log()[-1]["action"], audit_log()[-1]["subject_id"]) == (AuditAction.UPDATE.value, created.record_id)
    person = registries.person(SYSTEM, created.record_id, "check").person
    assert (person.phone, person.version) == ("13987654321", 2)


def test_a_large_import_spanning_several_transactions_writes_every_row_whole(registries, clerk):
    batch = rows(*(person_row() for _ in range(120)))
    outcomes = registries.import_rows(clerk, ImportKind.PERSON, batch, "upload")
    assert {o.status for o in outcomes} == {RowStatus.ACCEPTED}
    assert len(registry_items("PERSON#")) == 120
    assert_every_row_whole()


class _BlindToExistingNumbers(PersonRepository):
    """Sees no registered id numbers: as if another import claimed them between check and write."""

    def ids_by_id_number(self, id_numbers):
        list(id_numbers)
        return {}


def test_a_row_whose_id_number_is_claimed_meanwhile_is_rejected_and_nothing_of_it_is_written(clerk):
    # given a person registered by one import, and a second import that did not see them
    registries = registry_service(persons=_BlindToExistingNumbers())
    taken = person_row()
    [first] = registries.import_rows(clerk, ImportKind.PERSON, rows(taken), "upload 1")
    # when the second import brings the same id number between two new people
    outcomes = registries.import_rows(
        clerk, ImportKind.PERSON, rows(person_row(), {**taken, "name": "冒名"}, person_row()), "upload 2"
    )
    # then that row is rejected, its neighbours are written, and no half-written row remains
    assert [o.status for o in outcomes] == [RowStatus.ACCEPTED, RowStatus.REJECTED, RowStatus.ACCEPTED]
    assert "registered meanwhile" in outcomes[1].reasons[0]
    assert len(registry_items("PERSON#")) == 3
    assert_every_row_whole()
    assert registries.person(SYSTEM, first.record_id, "check").person.name == taken["name"]


def test_only_officials_and_the_system_import_persons(registries):
    for actor in (community_staff(HOME), police(), resident()):
        with pytest.raises(PermissionDenied):
            registries.import_rows(actor, ImportKind.PERSON, rows(person_row()), "upload")
    assert registry_items("PERSON#") == []
    assert [o.status for o in registries.import_rows(SYSTEM, ImportKind.PERSON, rows(person_row()), "seed")] == [
        RowStatus.ACCEPTED
    ]


# --- households ----------------------------------------------------------------------------------


def test_a_household_is_built_from_household_numbers_and_relationships(registries, clerk):
    # given a family in one spreadsheet, the head not first
    batch = rows(
        person_row(name="王小明", household_no="230108-0042", relationship="长子"),
        person_row(name="王建国", household_no="230108-0042", relationship="户主", registered_detail="友协大街42号"),
        person_row(name="李秀英", household_no="230108-0042", relationship="妻"),
        person_row(name="赵敏", household_no="230108-0043", relationship="户主"),
    )
    son, head, wife, other = registries.import_rows(clerk, ImportKind.PERSON, batch, "upload")
    # when the household is read
    household = registries.households(clerk, ["230108-0042"])["230108-0042"]
    # then the head is the 户主 and every member is listed with their relationship
    assert household.head_id == head.record_id
    assert {(m.person_id, m.relationship) for m in household.members} == {
        (son.record_id, Relationship.CHILD), (head.record_id, Relationship.HEAD), (wife.record_id, Relationship.SPOUSE)
    }
    assert household.address is not None
    assert registries.person(SYSTEM, wife.record_id, "check").person.household_id == "230108-0042"
    assert registries.households(clerk, ["230108-0043"])["230108-0043"].head_id == other.record_id


def test_members_imported_later_join_the_existing_household(registries, clerk):
    [head] = registries.import_rows(
        clerk, ImportKind.PERSON, rows(person_row(household_no="H-7", relationship="户主")), "upload 1"
    )
    [child] = registries.import_rows(
        clerk, ImportKind.PERSON, rows(person_row(household_no="H-7", relationship="孙女")), "upload 2"
    )
    household = registries.households(clerk, ["H-7"])["H-7"]
    assert household.head_id == head.record_id
    assert {m.person_id: m.relationship for m in household.members} == {
        head.record_id: Relationship.HEAD, child.record_id: Relationship.GRANDCHILD
    }
    assert household.version == 2


def test_a_head_imported_after_the_members_becomes_the_head(registries, clerk):
    [child] = registries.import_rows(
        clerk, ImportKind.PERSON, rows(person_row(household_no="H-8", relationship="子")), "upload 1"
    )
    [head] = registries.import_rows(
        clerk, ImportKind.PERSON, rows(person_row(household_no="H-8", relationship="户主")), "upload 2"
    )
    household = registries.households(clerk, ["H-8"])["H-8"]
    assert household.head_id == head.record_id
    assert {m.person_id for m in household.members} == {child.record_id, head.record_id}


def test_a_person_given_a_household_by_update_joins_it(registries, clerk):
    head = register(registries)
    registries.update_person(clerk, head.id, {"household_no": "H-9", "relationship": "户主"}, "new household")
    spouse = register(registries)
    registries.update_person(clerk, spouse.id, {"household_no": "H-9", "relationship": "配偶"}, "joins household")
    household = registries.households(clerk, ["H-9"])["H-9"]
    assert household.head_id == head.id
    assert {m.person_id: m.relationship for m in household.members} == {
        head.id: Relationship.HEAD, spouse.id: Relationship.SPOUSE
    }


def test_households_are_read_by_the_signed_in_only(registries):
    with pytest.raises(PermissionDenied):
        registries.households(None, ["H-1"])


# --- registering one person ---------------------------------------------------------------------


def test_register_person_returns_the_full_record_and_audits_it(registries, clerk):
    row = person_row(name="王建国", sex="男", id_number=new_id_number(sex=Sex.MALE))
    seen = registries.register_person(clerk, row, "walk-in registration")
    assert seen.full and seen.id_number == row["id_number"]
    assert seen.person.status is PersonStatus.RESIDENT and seen.person.version == 1
    [entry] = audit_log()
    assert (entry["action"], entry["subject_id"], entry["purpose"]) == ("create", seen.person.id, "walk-in registration")


def test_register_person_refuses_an_id_number_already_registered(registries, clerk):
    row = person_row()
    registries.register_person(clerk, row, "register")
    with pytest.raises(AlreadyExists):
        registries.register_person(clerk, {**row, "name": "别人"}, "register")
    assert len(registry_items("PERSON#")) == 1


def test_register_person_refuses_an_invalid_row_naming_every_field(registries, clerk):
    with pytest.raises(ValidationFailed) as caught:
        registries.register_person(clerk, person_row(name="", id_number="123"), "register")
    assert {p.field for p in caught.value.problems} == {"name", "id_number"}
    assert registry_items("PERSON#") == [] and audit_log() == []


def test_community_staff_register_residents_of_their_own_community_only(registries):
    staff = community_staff(HOME)
    assert registries.register_person(staff, person_row(current_community_id=HOME), "register").person.community_id == HOME
    with pytest.raises(PermissionDenied):
        registries.register_person(staff, person_row(current_community_id=ELSEWHERE), "register")
    with pytest.raises(PermissionDenied):
        registries.register_person(staff, person_row(current_community_id=None), "register")
    assert len(registry_items("PERSON#")) == 1


@pytest.mark.parametrize("actor", [police(), property_manager(HOME), resident(), traffic_engineer()], ids=str)
def test_other_roles_do_not_register_persons(registries, actor):
    with pytest.raises(PermissionDenied):
        registries.register_person(actor, person_row(), "register")


# --- updating --------------------------------------------------------------------------------------


def test_update_person_changes_only_the_given_fields(registries, clerk):
    before = register(registries, name="王建国", phone="13812345678", current_room="501")
    after = registries.update_person(clerk, before.id, {"phone": "13987654321"}, "phone changed").person
    assert after.phone == "13987654321"
    assert (after.name, after.id_number, after.current_address, after.registered_address) == (
        before.name, before.id_number, before.current_address, before.registered_address
    )
    assert after.version == before.version + 1
    assert (audit_log()[-1]["action"], audit_log()[-1]["purpose"]) == ("update", "phone changed")
    stored = registries.person(SYSTEM, before.id, "check").person
    assert stored.phone == "13987654321" and stored.version == after.version


def test_update_person_with_nothing_new_writes_and_audits_nothing(registries, clerk):
    before = register(registries)
    entries = len(audit_log())
    after = registries.update_person(clerk, before.id, {"name": before.name}, "no-op").person
    assert after.version == before.version and len(audit_log()) == entries


def test_update_person_to_a_new_id_number_moves_the_claim(registries, clerk):
    before = register(registries, id_number=new_id_number(sex=Sex.FEMALE))
    corrected = new_id_number(sex=Sex.FEMALE)
    after = registries.update_person(clerk, before.id, {"id_number": corrected}, "typo in id number").person
    assert after.id_number == corrected
    assert registries.person_by_id_number(SYSTEM, corrected, "check").person.id == before.id
    assert registries.person_by_id_number(SYSTEM, before.id_number, "check") is None
    assert_every_row_whole()


def test_update_person_refuses_another_persons_id_number(registries, clerk):
    first, second = register(registries), register(registries)
    with pytest.raises(AlreadyExists):
        registries.update_person(clerk, second.id, {"id_number": first.id_number}, "typo")
    assert registries.person(SYSTEM, second.id, "check").person.id_number == second.id_number
    assert_every_row_whole()


def test_update_person_refuses_invalid_values(registries, clerk):
    before = register(registries, id_number=new_id_number(sex=Sex.MALE))
    with pytest.raises(ValidationFailed) as caught:
        registries.update_person(clerk, before.id, {"sex": "女", "phone": "abc"}, "fix")
    assert {p.field for p in caught.value.problems} == {"sex", "phone"}
    assert registries.person(SYSTEM, before.id, "check").person == before


class _StaleReads(PersonRepository):
    """Hands out the first copy of each person it read: someone else's change happens unseen."""

    def __init__(self) -> None:
        self.copies = {}

    def get(self, person_id):
        return self.copies.setdefault(person_id, super().get(person_id))


def test_update_person_refuses_to_overwrite_a_change_made_meanwhile(registries, clerk):
    # given a clerk who read a person, and a colleague who changed it since
    person = register(registries, phone="13812345678")
    stale = registry_service(persons=_StaleReads())
    stale.update_person(clerk, person.id, {"phone": "13900000001"}, "first change")
    registries.update_person(clerk, person.id, {"phone": "13900000002"}, "colleague's change")
    # when the first clerk changes what they read
    with pytest.raises(InvalidState):
        stale.update_person(clerk, person.id, {"phone": "13900000003"}, "second change")
    # then the colleague's change stands
    assert registries.person(SYSTEM, person.id, "check").person.phone == "13900000002"


def test_community_staff_update_their_residents_but_not_move_them_away(registries):
    person = register(registries, current_community_id=HOME)
    staff = community_staff(HOME)
    assert registries.update_person(staff, person.id, {"current_room": "602"}, "moved flat").person.current_address.room == "602"
    with pytest.raises(PermissionDenied):
        registries.update_person(staff, person.id, {"current_community_id": ELSEWHERE}, "moved")
    with pytest.raises(PermissionDenied):
        registries.update_person(community_staff(ELSEWHERE), person.id, {"current_room": "101"}, "moved")
    assert registries.person(SYSTEM, person.id, "check").person.current_address.community_id == HOME


def test_update_of_an_unknown_person_is_not_found(registries, clerk):
    with pytest.raises(NotFound):
        registries.update_person(clerk, "01NOBODY", {"phone": "13812345678"}, "fix")


# --- status --------------------------------------------------------------------------------------


def test_a_status_change_is_kept_in_the_history_with_who_and_why(registries, clerk):
    person = register(registries)
    moved = registries.change_person_status(clerk, person.id, PersonStatus.MOVED_OUT, " 迁往南岗区 ", "move").person
    back = registries.change_person_status(clerk, person.id, PersonStatus.RESIDENT, "迁回", "move back").person
    assert back.status is PersonStatus.RESIDENT and moved.status is PersonStatus.MOVED_OUT
    assert [(h.status, h.by, h.reason) for h in back.history] == [
        (PersonStatus.MOVED_OUT, "person:clerk-1", "迁往南岗区"), (PersonStatus.RESIDENT, "person:clerk-1", "迁回")
    ]
    assert [(e["action"], e["purpose"]) for e in audit_log()[-2:]] == [("update", "move"), ("update", "move back")]
    assert registries.person(SYSTEM, person.id, "check").person.history == back.history


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_status_change_needs_a_reason(registries, clerk, reason):
    person = register(registries)
    with pytest.raises(ValidationFailed) as caught:
        registries.change_person_status(clerk, person.id, PersonStatus.MOVED_OUT, reason, "move")
    assert caught.value.problems[0].field == "reason"
    assert registries.person(SYSTEM, person.id, "check").person.status is PersonStatus.RESIDENT


def test_deceased_is_final(registries, clerk):
    person = register(registries)
    registries.change_person_status(clerk, person.id, PersonStatus.DECEASED, "死亡证明 2026-117", "death")
    for status in (PersonStatus.RESIDENT, PersonStatus.MOVED_OUT):
        with pytest.raises(InvalidState):
            registries.change_person_status(clerk, person.id, status, "mistake", "undo")
    assert registries.person(SYSTEM, person.id, "check").person.status is PersonStatus.DECEASED


def test_merged_is_not_a_status_to_set_by_hand(registries, clerk):
    person = register(registries)
    with pytest.raises(ValidationFailed):
        registries.change_person_status(clerk, person.id, PersonStatus.MERGED, "duplicate", "merge")


def test_the_same_status_again_changes_nothing(registries, clerk):
    person = register(registries)
    unchanged = registries.change_person_status(clerk, person.id, PersonStatus.RESIDENT, "", "no-op").person
    assert unchanged.history == () and unchanged.version == person.version


def test_status_changes_follow_the_writer_rules(registries):
    person = register(registries, current_community_id=HOME)
    with pytest.raises(PermissionDenied):
        registries.change_person_status(community_staff(ELSEWHERE), person.id, PersonStatus.MOVED_OUT, "x", "move")
    moved = registries.change_person_status(community_staff(HOME), person.id, PersonStatus.MOVED_OUT, "迁出", "move")
    assert moved.person.status is PersonStatus.MOVED_OUT


# --- merging duplicates --------------------------------------------------------------------------


def test_merging_moves_entities_and_credit_records_and_marks_the_duplicate(registries, clerk):
    # given the same man registered twice, the duplicate legal representative of a company with credit records
    keep = register(registries, name="王建国", phone=None)
    duplicate = register(registries, name="王建國", phone="13812345678")
    company = registries.register_entity(clerk, entity_row(duplicate.id_number), "register")
    registries.add_credit_record(clerk, credit_row(duplicate.id_number, "行政处罚", decision_number="罚1"), "record")
    registries.add_credit_record(clerk, credit_row(duplicate.id_number, "欠缴", decision_number="欠1"), "record")
    # when an official merges the duplicate into the record to keep
    kept = registries.merge_persons(clerk, keep.id, duplicate.id, "duplicate registration").person
    # then the company's legal representative is the kept record
    entity = registries.entities(clerk, [company.id])[company.id]
    assert (entity.legal_rep_id, entity.legal_rep_name) == (keep.id, "王建国")
    assert [e.id for e in registries.entities_of_legal_rep(clerk, keep.id, limit=10, start=None).items] == [company.id]
    assert registries.entities_of_legal_rep(clerk, duplicate.id, limit=10, start=None).items == []
    # and the credit records are the kept person's, with the profiles recomputed
    moved = registries.credit_records(SYSTEM, SubjectType.PERSON, keep.id, limit=10, start=None, purpose="check").items
    assert {r.decision_number for r in moved} == {"罚1", "欠1"} and {r.subject_id for r in moved} == {keep.id}
    assert registries.credit_records(SYSTEM, SubjectType.PERSON, duplicate.id, limit=10, start=None,
                                     purpose="check").items == []
    profiles = registries.credit_profiles(SYSTEM, [(SubjectType.PERSON, keep.id), (SubjectType.PERSON, duplicate.id)], "x")
    assert profiles[(SubjectType.PERSON, keep.id)].score == 100 - 10 - 5
    assert profiles[(SubjectType.PERSON, duplicate.id)].score == 100
    # and the kept record gains what only the duplicate knew
    assert kept.phone == "13812345678"
    # and the duplicate is marked merged into the kept record, with the reason in its history
    gone = registries.person(SYSTEM, duplicate.id, "check").person
    assert (gone.status, gone.merged_into) == (PersonStatus.MERGED, keep.id)
    assert gone.history[-1].status is PersonStatus.MERGED and keep.id in gone.history[-1].reason
    assert {e["subject_id"] for e in audit_log() if e["purpose"] == "duplicate registration"} == {keep.id, duplicate.id}


def test_a_merged_record_leaves_its_community_list(registries, clerk):
    keep, duplicate = register(registries), register(registries)
    registries.merge_persons(clerk, keep.id, duplicate.id, "duplicate")
    listed = registries.persons_in_community(SYSTEM, HOME, limit=20, start=None, purpose="check").items
    assert [v.person.id for v in listed] == [keep.id]


def test_a_merged_record_cannot_be_merged_again_nor_change_status(registries, clerk):
    keep, duplicate, third = register(registries), register(registries), register(registries)
    registries.merge_persons(clerk, keep.id, duplicate.id, "duplicate")
    with pytest.raises(InvalidState):
        registries.merge_persons(clerk, third.id, duplicate.id, "duplicate")
    with pytest.raises(InvalidState):
        registries.merge_persons(clerk, duplicate.id, third.id, "duplicate")
    with pytest.raises(InvalidState):
        registries.change_person_status(clerk, duplicate.id, PersonStatus.RESIDENT, "undo", "undo")


def test_a_record_is_not_merged_into_itself(registries, clerk):
    person = register(registries)
    with pytest.raises(ValidationFailed):
        registries.merge_persons(clerk, person.id, person.id, "duplicate")


@pytest.mark.parametrize("actor", [community_staff(HOME), police(), resident()], ids=str)
def test_only_officials_merge(registries, actor):
    keep, duplicate = register(registries), register(registries)
    with pytest.raises(PermissionDenied):
        registries.merge_persons(actor, keep.id, duplicate.id, "duplicate")
    assert registries.person(SYSTEM, duplicate.id, "check").person.status is PersonStatus.RESIDENT


# --- search, masking and the audit of every read ------------------------------------------------


def test_police_with_a_purpose_find_a_person_by_id_number_in_full(registries):
    person = register(registries)
    entries = len(audit_log())
    seen = registries.person_by_id_number(police(id="officer-7"), person.id_number.lower(), PURPOSE)
    assert seen.full and seen.id_number == person.id_number and seen.registered_address is not None
    [entry] = audit_log()[entries:]
    assert (entry["actor"], entry["action"], entry["subject_id"], entry["purpose"], entry["detail"]) == (
        "person:officer-7", "read", person.id, PURPOSE, {"fields": "full"}
    )


def test_a_read_without_purpose_is_masked_and_audited_as_not_stated(registries):
    person = register(registries, phone="13812345678")
    entries = len(audit_log())
    seen = registries.person_by_id_number(official(), person.id_number, "  ")
    assert seen.masked and seen.id_number == mask_id_number(person.id_number) and seen.phone == "138****5678"
    assert seen.registered_address is None
    [entry] = audit_log()[entries:]
    assert (entry["purpose"], entry["detail"]) == ("not stated", {"fields": "masked"})


def test_an_unknown_id_number_is_none_and_an_invalid_one_refused(registries):
    assert registries.person_by_id_number(police(), new_id_number(), PURPOSE) is None
    with pytest.raises(ValidationFailed):
        registries.person_by_id_number(police(), "12345", PURPOSE)
    assert audit_log() == []


def test_a_person_the_viewer_may_not_see_is_neither_returned_nor_audited(registries):
    person = register(registries, current_community_id=HOME)
    entries = len(audit_log())
    assert registries.person_by_id_number(community_staff(ELSEWHERE), person.id_number, PURPOSE) is None
    assert registries.persons(resident(), [person.id], PURPOSE) == {}
    with pytest.raises(NotFound):
        registries.person(traffic_engineer(), person.id, PURPOSE)
    assert len(audit_log()) == entries


def test_search_by_name_prefix_returns_matching_names_only_each_read_audited(registries):
    wangs = [register(registries, name=n) for n in ("王建国", "王建军", "王芳")]
    register(registries, name="汪建国")
    entries = len(audit_log())
    page = registries.persons_by_name(police(), "王建", limit=20, start=None, purpose=PURPOSE)
    assert sorted(v.person.name for v in page.items) == ["王建军", "王建国"]
    assert all(v.full for v in page.items)
    new = audit_log()[entries:]
    assert sorted(e["subject_id"] for e in new) == sorted(p.id for p in wangs[:2])
    assert {(e["action"], e["purpose"]) for e in new} == {("read", PURPOSE)}


def test_search_by_name_needs_a_prefix(registries):
    with pytest.raises(ValidationFailed):
        registries.persons_by_name(police(), "  ", limit=20, start=None, purpose=PURPOSE)


def test_search_by_name_pages_through_results(registries):
    for name in ("李一", "李二", "李三", "李四", "李五"):
        register(registries, name=name)
    first = registries.persons_by_name(police(), "李", limit=3, start=None, purpose=PURPOSE)
    rest = registries.persons_by_name(police(), "李", limit=3, start=first.next_key, purpose=PURPOSE)
    assert len(first.items) == 3 and first.next_key is not None
    assert sorted(v.person.name for v in first.items + rest.items) == sorted(["李一", "李二", "李三", "李四", "李五"])


def test_community_staff_find_their_own_residents_by_name_masked(registries):
    mine = register(registries, name="张伟", current_community_id=HOME, phone="13812345678")
    register(registries, name="张伟", current_community_id=ELSEWHERE)
    entries = len(audit_log())
    page = registries.persons_by_name(community_staff(HOME, id="staff-1"), "张", limit=20, start=None, purpose=PURPOSE)
    [seen] = page.items
    assert seen.person.id == mine.id and seen.masked
    assert (seen.id_number, seen.phone) == (mask_id_number(mine.id_number), "138****5678")
    [entry] = audit_log()[entries:]
    assert (entry["subject_id"], entry["actor"], entry["detail"]) == (mine.id, "person:staff-1", {"fields": "masked"})


def test_persons_in_a_community_by_role(registries):
    residents = [register(registries, current_community_id=HOME) for _ in range(3)]
    register(registries, current_community_id=ELSEWHERE)

    def listed(viewer, purpose=PURPOSE):
        page = registries.persons_in_community(viewer, HOME, limit=20, start=None, purpose=purpose)
        return {v.person.id: v.masked for v in page.items}

    everyone_masked = {p.id: True for p in residents}
    assert listed(property_manager(HOME)) == everyone_masked
    assert listed(police()) == {p.id: False for p in residents}
    assert listed(police(), "") == everyone_masked
    assert listed(community_staff(ELSEWHERE)) == {}
    assert listed(resident(id=residents[0].id)) == {residents[0].id: False}


def test_one_audit_entry_per_person_returned_with_the_purpose(registries):
    people = [register(registries, current_community_id=HOME) for _ in range(4)]
    entries = len(audit_log())
    registries.persons_in_community(official(id="official-9"), HOME, limit=20, start=None, purpose="稽查 2026-5")
    new = audit_log()[entries:]
    assert sorted(e["subject_id"] for e in new) == sorted(p.id for p in people)
    assert {(e["actor"], e["action"], e["subject_type"], e["purpose"]) for e in new} == {
        ("person:official-9", "read", "person", "稽查 2026-5")
    }


def test_a_resident_sees_only_themselves_in_full(registries):
    me, other = register(registries), register(registries)
    seen = registries.persons(resident(id=me.id), [me.id, other.id], "")
    assert list(seen) == [me.id] and seen[me.id].full
    [entry] = [e for e in audit_log() if e["action"] == "read"]
    assert (entry["subject_id"], entry["purpose"]) == (me.id, "not stated")


def test_a_birth_date_of_the_record_comes_from_the_id_number(registries):
    number = new_id_number(born=date(1990, 2, 28), sex=Sex.FEMALE)
    person = register(registries, id_number=number)
    assert (person.birth_date, person.sex) == (date(1990, 2, 28), Sex.FEMALE)


def test_the_clock_decides_today_for_birth_dates(clerk):
    # given a district clock on 1 March 2026, and someone born the day after
    registries = registry_service(FakeClock(datetime(2026, 3, 1, 1, 0, tzinfo=UTC)))
    unborn = new_id_number(born=date(2026, 3, 2))
    with pytest.raises(ValidationFailed):
        registries.register_person(clerk, person_row(id_number=unborn), "register")
