"""What the registries give the gate: the police watchlist, residency look-ups and residency-change listeners."""

import csv
import io

import pytest
from factories import (
    audit_log,
    community_staff,
    official,
    person_row,
    police,
    property_manager,
    recording_listener,
    resident,
)

from sunflower.audit.models import AuditAction
from sunflower.auth.principals import SYSTEM
from sunflower.aws.clients import client
from sunflower.common.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from sunflower.common.settings import get_settings
from sunflower.container import services
from sunflower.registries.imports import Upload
from sunflower.registries.models import PersonStatus, Residency, ResidencyChange
from sunflower.registries.service import ImportKind, Row

pytestmark = pytest.mark.usefixtures("local_cloud")

HOME = "pf-youxie-xingfu"
ELSEWHERE = "pf-xinjiang-shengli"
CASE = "刑侦 2026-0113"


@pytest.fixture
def registries():
    return services().registries


@pytest.fixture
def clerk():
    return official(id="clerk-1")


@pytest.fixture
def heard(registries):
    """Every list of changes the registry announced, in order."""
    listener = recording_listener()
    registries.on_residency_change(listener)
    return listener.calls


def register(registries, **fields):
    return registries.register_person(official(), person_row(**fields), "register").person


def rows(*fields: dict) -> list[Row]:
    return [Row(line, f) for line, f in enumerate(fields, start=2)]


def last_update() -> dict:
    return [e for e in audit_log() if e["action"] == AuditAction.UPDATE.value][-1]


def dynamodb_calls(monkeypatch) -> list[str]:
    from pynamodb.connection.base import Connection

    calls: list[str] = []
    original = Connection._make_api_call

    def counting(self, operation_name, operation_kwargs, *args, **kwargs):
        calls.append(operation_name)
        return original(self, operation_name, operation_kwargs, *args, **kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", counting)
    return calls


# --- the police watchlist ---------------------------------------------------------------------------


def test_the_police_put_a_person_on_the_watchlist_and_the_change_is_audited_with_the_reason(registries):
    # given a registered person
    person = register(registries)
    officer = police(id="officer-7")
    # when the police put them on the watchlist
    view = registries.set_watchlist(officer, person.id, True, "  网上追逃 A2026-17  ", CASE)
    # then the flag is stored and shown to the police
    assert view.watchlisted is True
    assert registries.person(SYSTEM, person.id, "check").person.watchlisted is True
    # and the log names who, why and the reason
    entry = last_update()
    assert (entry["action"], entry["subject_id"], entry["actor"], entry["purpose"]) == (
        AuditAction.UPDATE.value, person.id, "person:officer-7", CASE
    )
    assert entry["detail"] == {"watchlisted": "true", "reason": "网上追逃 A2026-17"}


def test_the_police_take_a_person_off_the_watchlist(registries):
    person = register(registries)
    registries.set_watchlist(police(), person.id, True, "A2026-17", CASE)

    view = registries.set_watchlist(police(), person.id, False, "A2026-17 closed", CASE)

    assert view.watchlisted is False
    assert registries.person(SYSTEM, person.id, "check").person.watchlisted is False
    assert last_update()["detail"] == {"watchlisted": "false", "reason": "A2026-17 closed"}


def test_setting_the_watchlist_flag_it_already_has_writes_nothing(registries):
    # given a flagged person
    person = register(registries)
    registries.set_watchlist(police(), person.id, True, "A2026-17", CASE)
    version = registries.person(SYSTEM, person.id, "check").person.version
    updates = sum(e["action"] == AuditAction.UPDATE.value for e in audit_log())
    # when flagged again
    view = registries.set_watchlist(police(), person.id, True, "A2026-17", CASE)
    # then the record is not written again and no further change is logged
    assert view.watchlisted is True
    assert registries.person(SYSTEM, person.id, "check").person.version == version
    assert sum(e["action"] == AuditAction.UPDATE.value for e in audit_log()) == updates


@pytest.mark.parametrize(
    "actor",
    [official(), community_staff(HOME), property_manager(HOME), resident(), SYSTEM],
    ids=["official", "community_staff", "property_manager", "resident", "system"],
)
def test_only_the_police_set_the_watchlist(registries, actor):
    person = register(registries)

    with pytest.raises(PermissionDenied, match="only the police"):
        registries.set_watchlist(actor, person.id, True, "A2026-17", CASE)

    assert registries.person(SYSTEM, person.id, "check").person.watchlisted is False


@pytest.mark.parametrize("reason", ["", "   ", "x" * 201])
def test_the_watchlist_needs_a_reason_of_at_most_200_characters(registries, reason):
    person = register(registries)

    with pytest.raises(ValidationFailed) as caught:
        registries.set_watchlist(police(), person.id, True, reason, CASE)

    assert [p.field for p in caught.value.problems] == ["reason"]
    assert registries.person(SYSTEM, person.id, "check").person.watchlisted is False


def test_a_reason_of_exactly_200_characters_is_enough(registries):
    person = register(registries)
    assert registries.set_watchlist(police(), person.id, True, "x" * 200, CASE).watchlisted is True


def test_watchlisting_an_unknown_or_merged_person_is_refused(registries, clerk):
    keep, duplicate = register(registries), register(registries)
    registries.merge_persons(clerk, keep.id, duplicate.id, "duplicate")

    with pytest.raises(NotFound):
        registries.set_watchlist(police(), "no-such-person", True, "A2026-17", CASE)
    with pytest.raises(InvalidState, match=keep.id):
        registries.set_watchlist(police(), duplicate.id, True, "A2026-17", CASE)


def test_only_the_police_learn_the_flag_when_reading_a_person(registries):
    # given a flagged resident of HOME
    person = register(registries)
    registries.set_watchlist(police(), person.id, True, "A2026-17", CASE)
    # when read by each role that may see them
    seen = {
        "police": registries.person(police(), person.id, CASE),
        "police without purpose": registries.person(police(), person.id, ""),
        "official": registries.person(official(), person.id, "低保复核"),
        "community staff": registries.person(community_staff(HOME), person.id, "走访"),
        "property manager": registries.person(property_manager(HOME), person.id, "门禁"),
        "the person": registries.person(resident(id=person.id), person.id, "self"),
    }
    # then only the police see the flag; the others see it as unknown, not as "not flagged"
    assert {who: v.watchlisted for who, v in seen.items()} == {
        "police": True, "police without purpose": True, "official": None, "community staff": None,
        "property manager": None, "the person": None,
    }


def test_updates_and_imports_keep_the_flag(registries, clerk):
    row = person_row()
    [created] = registries.import_rows(clerk, ImportKind.PERSON, rows(row), "upload")
    registries.set_watchlist(police(), created.record_id, True, "A2026-17", CASE)

    registries.update_person(clerk, created.record_id, {"phone": "13900001111"}, "fix phone")
    registries.import_rows(clerk, ImportKind.PERSON, rows({**row, "current_room": "502"}), "upload")

    assert registries.person(SYSTEM, created.record_id, "check").person.watchlisted is True


def test_merging_keeps_a_flag_of_the_duplicate_on_the_kept_record(registries, clerk):
    keep, duplicate = register(registries), register(registries)
    registries.set_watchlist(police(), duplicate.id, True, "A2026-17", CASE)

    registries.merge_persons(clerk, keep.id, duplicate.id, "duplicate")

    assert registries.person(SYSTEM, keep.id, "check").person.watchlisted is True


# --- residency look-up -------------------------------------------------------------------------------


def test_residency_says_community_activity_and_flag_and_leaves_out_unknown_ids(registries, clerk):
    # given residents, a flagged one, one moved out, one deceased, and a merged duplicate
    living, flagged, moved, dead, keep, duplicate = (register(registries) for _ in range(6))
    elsewhere = register(registries, current_community_id=ELSEWHERE)
    no_address = registries.register_person(clerk, person_row(current_community_id="", current_community="",
                                                              current_building="", current_unit="",
                                                              current_room=""), "register").person
    registries.set_watchlist(police(), flagged.id, True, "A2026-17", CASE)
    registries.change_person_status(clerk, moved.id, PersonStatus.MOVED_OUT, "迁往南岗区", "迁出")
    registries.change_person_status(clerk, dead.id, PersonStatus.DECEASED, "死亡证明 2026-3", "死亡")
    registries.merge_persons(clerk, keep.id, duplicate.id, "duplicate")
    ids = [p.id for p in (living, flagged, moved, dead, keep, duplicate, elsewhere, no_address)]
    # when the gate asks, with an unknown id and a repeated one among them
    found = registries.residency([*ids, "no-such-person", living.id])
    # then each known person is there once, as the registry has them
    assert found == {
        living.id: Residency(living.id, HOME, True, False),
        flagged.id: Residency(flagged.id, HOME, True, True),
        moved.id: Residency(moved.id, HOME, False, False),
        dead.id: Residency(dead.id, HOME, False, False),
        keep.id: Residency(keep.id, HOME, True, False),
        duplicate.id: Residency(duplicate.id, HOME, False, False),
        elsewhere.id: Residency(elsewhere.id, ELSEWHERE, True, False),
        no_address.id: Residency(no_address.id, None, True, False),
    }


def test_residency_of_100_persons_is_one_request_and_is_not_audited(registries, clerk, monkeypatch):
    # given 100 registered persons
    outcomes = registries.import_rows(clerk, ImportKind.PERSON, rows(*(person_row() for _ in range(100))), "upload")
    ids = [o.record_id for o in outcomes]
    entries = len(audit_log())
    calls = dynamodb_calls(monkeypatch)
    # when the gate looks all of them up
    found = registries.residency(ids)
    # then one BatchGetItem answers, and the read leaves no audit entry (the gate's access event does)
    assert len(found) == 100
    assert calls == ["BatchGetItem"]
    monkeypatch.undo()
    assert len(audit_log()) == entries


def test_residency_of_one_person_or_none_is_one_request_or_none(registries, monkeypatch):
    person = register(registries)
    calls = dynamodb_calls(monkeypatch)

    assert registries.residency([person.id]) == {person.id: Residency(person.id, HOME, True, False)}
    assert registries.residency([]) == {}
    assert len(calls) == 1


# --- residency-change listeners ---------------------------------------------------------------------


def test_moving_a_person_to_another_community_is_announced_once(registries, clerk, heard):
    person = register(registries)

    registries.update_person(clerk, person.id, {"current_community_id": ELSEWHERE, "current_community": "胜利社区"}, "搬家")

    assert heard == [[ResidencyChange(person.id, HOME, ELSEWHERE, True)]]


def test_removing_the_current_address_is_leaving_the_community(registries, clerk, heard):
    person = register(registries)
    blank = {f"current_{f}": "" for f in ("community_id", "community", "building", "unit", "room")}

    registries.update_person(clerk, person.id, blank, "地址作废")

    assert heard == [[ResidencyChange(person.id, HOME, None, True)]]


def test_an_update_that_keeps_the_community_is_not_announced(registries, clerk, heard):
    person = register(registries)

    registries.update_person(clerk, person.id, {"phone": "13900001111", "current_room": "502"}, "fix")
    registries.update_person(clerk, person.id, {"phone": "13900001111"}, "the same again")

    assert heard == []


def test_gaining_a_community_without_having_had_one_is_not_announced(registries, clerk, heard):
    person = registries.register_person(clerk, person_row(current_community_id="", current_community="",
                                                          current_building="", current_unit="", current_room=""),
                                        "register").person

    registries.update_person(clerk, person.id, {"current_community_id": HOME}, "登记现住址")

    assert heard == []


@pytest.mark.parametrize("status", [PersonStatus.MOVED_OUT, PersonStatus.DECEASED])
def test_a_person_who_moves_out_or_dies_is_announced_inactive(registries, clerk, heard, status):
    person = register(registries)

    registries.change_person_status(clerk, person.id, status, "民政通报", "status")

    assert heard == [[ResidencyChange(person.id, HOME, HOME, False)]]


def test_a_status_change_that_makes_nobody_inactive_is_not_announced(registries, clerk, heard):
    person = register(registries)
    registries.change_person_status(clerk, person.id, PersonStatus.MOVED_OUT, "迁往南岗区", "迁出")
    heard.clear()

    registries.change_person_status(clerk, person.id, PersonStatus.MOVED_OUT, "again", "迁出")  # the same again
    registries.change_person_status(clerk, person.id, PersonStatus.RESIDENT, "迁回", "迁入")  # back: no withdrawal

    assert heard == []


def test_merging_announces_the_duplicate_as_inactive(registries, clerk, heard):
    # given a duplicate registered elsewhere, and a record to keep that has no address yet
    keep = registries.register_person(clerk, person_row(current_community_id="", current_community="",
                                                        current_building="", current_unit="", current_room=""),
                                      "register").person
    duplicate = register(registries, current_community_id=ELSEWHERE)
    # when merged
    registries.merge_persons(clerk, keep.id, duplicate.id, "duplicate")
    # then one call names the duplicate only (the kept record gains an address, it leaves none)
    assert heard == [[ResidencyChange(duplicate.id, ELSEWHERE, ELSEWHERE, False)]]


def test_an_import_announces_the_changes_of_its_rows_in_one_call(registries, clerk, heard):
    # given four registered persons
    movers = [person_row() for _ in range(2)]
    stayer, phone_only = person_row(), person_row()
    created = registries.import_rows(clerk, ImportKind.PERSON, rows(*movers, stayer, phone_only), "upload 1")
    assert heard == []  # registering is no change of residency
    # when a spreadsheet moves two of them, leaves one as it is, changes a phone, and adds someone new
    registries.import_rows(clerk, ImportKind.PERSON, rows(
        {**movers[0], "current_community_id": ELSEWHERE}, stayer, {**movers[1], "current_community_id": ELSEWHERE},
        {**phone_only, "phone": "13900002222"}, person_row(),
    ), "upload 2")
    # then the registry announces both moves, together, once
    assert heard == [[
        ResidencyChange(created[0].record_id, HOME, ELSEWHERE, True),
        ResidencyChange(created[1].record_id, HOME, ELSEWHERE, True),
    ]]


def test_a_bulk_import_file_announces_once_per_chunk(registries, clerk, heard, monkeypatch):
    # given five registered persons, and the import pipeline writing chunks of two rows
    people = [person_row() for _ in range(5)]
    created = registries.import_rows(clerk, ImportKind.PERSON, rows(*people), "setup")
    monkeypatch.setattr(services().imports, "_chunk_rows", 2)
    # when a file moves the 1st, 2nd and 5th elsewhere (chunks: 1-2, 3-4, 5)
    moved = {0, 1, 4}
    body = _csv([{**p, "current_community_id": ELSEWHERE} if i in moved else p for i, p in enumerate(people)])
    key = "incoming/person/平房区公安分局/moves.csv"
    etag = client("s3").put_object(Bucket=get_settings().bucket("imports"), Key=key, Body=body)["ETag"].strip('"')
    job = services().imports.run(Upload(get_settings().bucket("imports"), key, etag, len(body)))
    # then each chunk that moved someone announced its moves in one call; the unchanged chunk none
    assert (job.accepted, job.unchanged, job.rejected) == (3, 2, 0)
    ids = [o.record_id for o in created]
    assert heard == [
        [ResidencyChange(ids[0], HOME, ELSEWHERE, True), ResidencyChange(ids[1], HOME, ELSEWHERE, True)],
        [ResidencyChange(ids[4], HOME, ELSEWHERE, True)],
    ]


def test_every_listener_hears_every_change(registries, clerk):
    first, second = recording_listener(), recording_listener()
    registries.on_residency_change(first)
    registries.on_residency_change(second)
    person = register(registries)

    registries.change_person_status(clerk, person.id, PersonStatus.MOVED_OUT, "迁往南岗区", "迁出")

    assert first.calls == second.calls == [[ResidencyChange(person.id, HOME, HOME, False)]]


def test_a_failing_listener_fails_the_call_after_the_write_is_kept(registries, clerk):
    # given a listener that fails
    def failing(changes):
        raise ConnectionError("gallery unavailable")

    registries.on_residency_change(failing)
    person = register(registries)
    # when a person moves out, the caller sees the failure (to retry) ...
    with pytest.raises(ConnectionError):
        registries.change_person_status(clerk, person.id, PersonStatus.MOVED_OUT, "迁往南岗区", "迁出")
    # ... and the write stands, so that the retry is idempotent
    assert registries.person(SYSTEM, person.id, "check").person.status is PersonStatus.MOVED_OUT
    assert registries.residency([person.id])[person.id].active is False


def test_writes_that_fail_announce_nothing(registries, clerk, heard):
    person = register(registries)

    with pytest.raises(PermissionDenied):
        registries.update_person(community_staff(HOME), person.id, {"current_community_id": ELSEWHERE}, "搬家")
    with pytest.raises(ValidationFailed):
        registries.change_person_status(clerk, person.id, PersonStatus.MOVED_OUT, " ", "迁出")

    assert heard == []


CHINESE = {
    "name": "姓名", "id_number": "身份证号", "phone": "联系电话", "current_community_id": "社区编码",
    "current_community": "社区", "current_building": "楼栋", "current_unit": "单元", "current_room": "房号",
    "registered_district": "户籍区县", "registered_detail": "户籍地址",
}


def _csv(people: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CHINESE.values())
    for person in people:
        writer.writerow([person.get(f, "") for f in CHINESE])
    return out.getvalue().encode()
