"""The legal-entity registry on the embedded cloud: registering, uniqueness, lookups and status."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from factories import (
    FakeClock,
    audit_log,
    community_staff,
    entity_row,
    new_credit_code,
    new_id_number,
    official,
    person_row,
    police,
    registry_service,
    resident,
    table_items,
)

from sunflower.auth.principals import SYSTEM
from sunflower.common.errors import (
    AlreadyExists,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from sunflower.container import services
from sunflower.registries.models import EntityStatus, PersonStatus
from sunflower.registries.service import ImportKind, Row, RowStatus

pytestmark = pytest.mark.usefixtures("local_cloud")


@pytest.fixture
def registries():
    return services().registries


@pytest.fixture
def clerk():
    return official(id="clerk-1")


@pytest.fixture
def rep(registries):
    """A registered resident who can represent companies."""
    return registries.register_person(official(), person_row(name="王建国"), "register").person


def rows(*fields: dict) -> list[Row]:
    return [Row(line, f) for line, f in enumerate(fields, start=2)]


def credit_code_claims() -> dict[str, str]:
    return {i["pk"].removeprefix("USCC#"): i["ref"] for i in table_items("registries") if i["pk"].startswith("USCC#")}


# --- registering ---------------------------------------------------------------------------------


def test_an_official_registers_an_entity_represented_by_a_registered_person(registries, clerk, rep):
    row = entity_row(rep.id_number, name="哈尔滨向日葵科技有限公司", registered_capital="1,000万元")
    entity = registries.register_entity(clerk, row, "business registration")
    assert (entity.name, entity.credit_code, entity.status) == ("哈尔滨向日葵科技有限公司", row["credit_code"], EntityStatus.ACTIVE)
    assert (entity.legal_rep_id, entity.legal_rep_name) == (rep.id, "王建国")
    assert entity.registered_capital == Decimal(1000) and entity.established_on == date(2018, 5, 20)
    assert registries.entities(resident(), [entity.id]) == {entity.id: entity}
    assert credit_code_claims() == {row["credit_code"]: entity.id}
    entry = audit_log()[-1]
    assert (entry["action"], entry["subject_type"], entry["subject_id"], entry["purpose"]) == (
        "create", "entity", entity.id, "business registration"
    )


def test_the_legal_representative_must_be_in_the_population_registry(registries, clerk):
    stranger = new_id_number()
    with pytest.raises(ValidationFailed) as caught:
        registries.register_entity(clerk, entity_row(stranger), "business registration")
    assert "legal_rep_id_number" in caught.value.message
    assert "not in the population registry" in caught.value.message
    assert stranger not in caught.value.message  # the full number is personal data
    assert credit_code_claims() == {}


def test_a_deceased_person_cannot_become_a_legal_representative(registries, clerk, rep):
    registries.change_person_status(clerk, rep.id, PersonStatus.DECEASED, "死亡证明 2026-117", "death")
    with pytest.raises(ValidationFailed) as caught:
        registries.register_entity(clerk, entity_row(rep.id_number), "business registration")
    assert "deceased" in caught.value.message
    assert credit_code_claims() == {}


def test_a_merged_record_cannot_become_a_legal_representative(registries, clerk, rep):
    duplicate = registries.register_person(clerk, person_row(name="王建國"), "register").person
    registries.merge_persons(clerk, rep.id, duplicate.id, "duplicate")
    with pytest.raises(ValidationFailed) as caught:
        registries.register_entity(clerk, entity_row(duplicate.id_number), "business registration")
    assert "merged" in caught.value.message


def test_an_invalid_entity_is_refused_naming_every_field(registries, clerk, rep):
    with pytest.raises(ValidationFailed) as caught:
        registries.register_entity(clerk, entity_row(rep.id_number, name="", credit_code="123"), "registration")
    assert {p.field for p in caught.value.problems} == {"name", "credit_code"}
    assert credit_code_claims() == {} and audit_log()[-1]["subject_type"] == "person"


def test_a_credit_code_is_registered_once(registries, clerk, rep):
    row = entity_row(rep.id_number)
    first = registries.register_entity(clerk, row, "registration")
    with pytest.raises(AlreadyExists):
        registries.register_entity(clerk, {**row, "name": "另一家公司"}, "registration")
    assert registries.entities(clerk, [first.id])[first.id].name == row["name"]
    assert credit_code_claims() == {row["credit_code"]: first.id}


@pytest.mark.parametrize("actor", [police(), community_staff("pf-youxie-xingfu"), resident()], ids=str)
def test_only_officials_register_entities(registries, rep, actor):
    with pytest.raises(PermissionDenied):
        registries.register_entity(actor, entity_row(rep.id_number), "registration")


# --- importing -----------------------------------------------------------------------------------


def test_import_of_entities_accepts_rejects_and_is_idempotent(registries, clerk, rep):
    # given a spreadsheet with two companies, one of them twice, and one with an unknown representative
    a, b = entity_row(rep.id_number), entity_row(rep.id_number)
    batch = rows(a, b, {**a, "name": "重复"}, entity_row(new_id_number()))
    # when imported twice
    first = registries.import_rows(clerk, ImportKind.ENTITY, batch, "registration upload")
    entries = len(audit_log())
    second = registries.import_rows(clerk, ImportKind.ENTITY, batch, "registration upload")
    # then the first run creates two, the second changes nothing and audits nothing
    assert [o.status for o in first] == [RowStatus.ACCEPTED, RowStatus.ACCEPTED, RowStatus.REJECTED, RowStatus.REJECTED]
    assert first[2].reasons == ("credit_code: same entity as line 2",)
    assert "not in the population registry" in first[3].reasons[0]
    assert [o.status for o in second] == [RowStatus.UNCHANGED, RowStatus.UNCHANGED, RowStatus.REJECTED, RowStatus.REJECTED]
    assert [o.record_id for o in second[:2]] == [o.record_id for o in first[:2]]
    assert len(audit_log()) == entries
    assert len(credit_code_claims()) == 2


def test_reimporting_a_changed_entity_updates_it_and_can_change_its_representative(registries, clerk, rep):
    successor = registries.register_person(clerk, person_row(name="李秀英"), "register").person
    row = entity_row(rep.id_number)
    [created] = registries.import_rows(clerk, ImportKind.ENTITY, rows(row), "upload")
    [changed] = registries.import_rows(
        clerk, ImportKind.ENTITY, rows({**row, "legal_rep_id_number": successor.id_number, "status": "吊销"}), "upload"
    )
    assert (changed.status, changed.record_id) == (RowStatus.ACCEPTED, created.record_id)
    entity = registries.entities(clerk, [created.record_id])[created.record_id]
    assert (entity.legal_rep_id, entity.legal_rep_name, entity.status, entity.version) == (
        successor.id, "李秀英", EntityStatus.REVOKED, 2
    )
    assert registries.entities_of_legal_rep(clerk, rep.id, limit=10, start=None).items == []
    assert [e.id for e in registries.entities_of_legal_rep(clerk, successor.id, limit=10, start=None).items] == [entity.id]


def test_only_officials_import_entities(registries, rep):
    with pytest.raises(PermissionDenied):
        registries.import_rows(community_staff("pf-youxie-xingfu"), ImportKind.ENTITY, rows(entity_row(rep.id_number)), "x")


# --- lookups -------------------------------------------------------------------------------------


def test_an_entity_is_found_by_its_credit_code(registries, clerk, rep):
    entity = registries.register_entity(clerk, entity_row(rep.id_number), "registration")
    assert registries.entity_by_code(resident(), entity.credit_code.lower()) == entity
    assert registries.entity_by_code(resident(), new_credit_code()) is None
    with pytest.raises(ValidationFailed):
        registries.entity_by_code(resident(), "not a code")
    with pytest.raises(PermissionDenied):
        registries.entity_by_code(None, entity.credit_code)


def test_entities_are_found_by_name_prefix(registries, clerk, rep):
    names = ["哈尔滨向日葵科技有限公司", "哈尔滨向日葵物业管理有限公司", "哈尔滨东轻铝业有限公司", "平房区便民超市"]
    ids = {n: registries.register_entity(clerk, entity_row(rep.id_number, name=n), "registration").id for n in names}
    found = registries.entities_by_name(resident(), " 哈尔滨向日葵", limit=20, start=None)
    assert sorted(e.name for e in found.items) == sorted(names[:2])
    assert {e.id for e in found.items} == {ids[names[0]], ids[names[1]]}
    with pytest.raises(ValidationFailed):
        registries.entities_by_name(resident(), "  ", limit=20, start=None)


def test_entities_by_name_page_through(registries, clerk, rep):
    for i in range(5):
        registries.register_entity(clerk, entity_row(rep.id_number, name=f"平房第{i}商店"), "registration")
    first = registries.entities_by_name(resident(), "平房", limit=2, start=None)
    second = registries.entities_by_name(resident(), "平房", limit=2, start=first.next_key)
    third = registries.entities_by_name(resident(), "平房", limit=2, start=second.next_key)
    names = [e.name for e in first.items + second.items + third.items]
    assert sorted(names) == [f"平房第{i}商店" for i in range(5)]


def test_entities_are_found_by_their_legal_representative(registries, clerk, rep):
    other = registries.register_person(clerk, person_row(), "register").person
    mine = {registries.register_entity(clerk, entity_row(rep.id_number), "registration").id for _ in range(3)}
    registries.register_entity(clerk, entity_row(other.id_number), "registration")
    found = registries.entities_of_legal_rep(resident(), rep.id, limit=20, start=None)
    assert {e.id for e in found.items} == mine
    assert {e.legal_rep_id for e in found.items} == {rep.id}


# --- status --------------------------------------------------------------------------------------


@pytest.fixture
def clock():
    # 17:00 UTC on 1 March is 01:00 on 2 March in the district
    return FakeClock(datetime(2026, 3, 1, 17, 0, tzinfo=UTC))


def test_a_status_change_is_dated_in_the_district_by_default(clock, clerk, rep):
    registries = registry_service(clock)
    entity = registries.register_entity(clerk, entity_row(rep.id_number), "registration")
    revoked = registries.change_entity_status(clerk, entity.id, EntityStatus.REVOKED, None, "吊销决定 2026-3")
    assert (revoked.status, revoked.status_changed_on, revoked.version) == (EntityStatus.REVOKED, date(2026, 3, 2), 2)
    assert registries.entities(clerk, [entity.id])[entity.id] == revoked
    entry = audit_log()[-1]
    assert (entry["action"], entry["subject_id"], entry["purpose"]) == ("update", entity.id, "吊销决定 2026-3")


def test_a_status_change_in_the_past_keeps_its_date(clock, clerk, rep):
    registries = registry_service(clock)
    entity = registries.register_entity(clerk, entity_row(rep.id_number), "registration")
    changed = registries.change_entity_status(clerk, entity.id, EntityStatus.CANCELLED, date(2026, 1, 15), "注销")
    assert changed.status_changed_on == date(2026, 1, 15)


def test_a_status_change_dated_in_the_future_is_refused(clock, clerk, rep):
    registries = registry_service(clock)
    entity = registries.register_entity(clerk, entity_row(rep.id_number), "registration")
    with pytest.raises(ValidationFailed) as caught:
        registries.change_entity_status(clerk, entity.id, EntityStatus.REVOKED, date(2026, 3, 3), "吊销")
    assert caught.value.problems[0].field == "on"
    assert registries.entities(clerk, [entity.id])[entity.id].status is EntityStatus.ACTIVE


def test_cancelled_is_final(registries, clerk, rep):
    entity = registries.register_entity(clerk, entity_row(rep.id_number), "registration")
    registries.change_entity_status(clerk, entity.id, EntityStatus.CANCELLED, None, "注销")
    for status in (EntityStatus.ACTIVE, EntityStatus.REVOKED):
        with pytest.raises(InvalidState):
            registries.change_entity_status(clerk, entity.id, status, None, "undo")
    assert registries.entities(clerk, [entity.id])[entity.id].status is EntityStatus.CANCELLED


def test_the_same_status_again_changes_nothing(registries, clerk, rep):
    entity = registries.register_entity(clerk, entity_row(rep.id_number), "registration")
    entries = len(audit_log())
    assert registries.change_entity_status(clerk, entity.id, EntityStatus.ACTIVE, None, "no-op") == entity
    assert len(audit_log()) == entries


def test_only_officials_change_entity_status(registries, clerk, rep):
    entity = registries.register_entity(clerk, entity_row(rep.id_number), "registration")
    with pytest.raises(PermissionDenied):
        registries.change_entity_status(police(), entity.id, EntityStatus.REVOKED, None, "x")
    with pytest.raises(NotFound):
        registries.change_entity_status(SYSTEM, "01NOSUCHENTITY", EntityStatus.REVOKED, None, "x")
