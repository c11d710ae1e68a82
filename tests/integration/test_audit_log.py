"""The tamper-evident audit log: appending, reading, sealing to S3, and detecting every kind of tampering."""

import base64
import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from factories import FakeClock, admin, audit_event, audit_service, auditor, person, resident

from sunflower.audit.models import GENESIS, AuditAction, AuditEntry, AuditEvent, ProblemKind
from sunflower.audit.service import AuditFilter
from sunflower.aws.clients import client
from sunflower.common.clock import to_iso
from sunflower.common.cursors import CursorCodec
from sunflower.common.errors import PermissionDenied, ValidationFailed
from sunflower.common.settings import get_settings
from sunflower.container import services

pytestmark = pytest.mark.usefixtures("local_cloud")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def audit(clock):
    """An audit service on the embedded cloud with a clock the test controls."""
    return audit_service(clock)


def _record_many(audit, clock: FakeClock, n: int, **overrides) -> list[AuditEntry]:
    entries = []
    for i in range(n):
        entries.append(audit.record(audit_event(subject_id=f"p-{i + 1}", **overrides)))
        clock.advance(seconds=1)
    return entries


# --- raw access, as someone with write access to the table or bucket would tamper ---------------


def _table():
    return boto3.resource("dynamodb", region_name=get_settings().region).Table(get_settings().resource("audit"))


def _raw(seq: int) -> dict:
    return _table().get_item(Key={"pk": "LOG", "sk": seq}, ConsistentRead=True)["Item"]


def _put_raw(item: dict) -> None:
    _table().put_item(Item=item)


def _rehash(item: dict) -> dict:
    """What a careful forger does after editing an item: make its hash agree with its content again."""
    stored_at = datetime.strptime(item["at"], "%Y-%m-%dT%H:%M:%S.%f%z")
    event = AuditEvent(
        actor=item["actor"],
        actor_roles=tuple(item["actor_roles"]),
        action=AuditAction(item["action"]),
        subject_type=item["subject_type"],
        subject_id=item["subject_id"],
        purpose=item["purpose"],
        detail=json.loads(item["detail"]),
    )
    entry = AuditEntry(int(item["sk"]), stored_at, event, item["prev_hash"], "")
    return {**item, "hash": entry.recomputed_hash()}


def _move_head(seq: int, hash_: str) -> None:
    _table().put_item(Item={"pk": "HEAD", "sk": 0, "head_seq": Decimal(seq), "hash": hash_})


def _kinds(verification) -> set[ProblemKind]:
    return {p.kind for p in verification.problems}


def _audit_bucket() -> str:
    return get_settings().bucket("audit")


# --- appending -----------------------------------------------------------------------------------


def test_records_append_in_sequence_each_linked_to_the_one_before(audit, clock):
    # when five accesses are recorded
    entries = _record_many(audit, clock, 5)
    # then they are numbered 1..5, the first links to genesis and each next to the one before
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(entries, entries[1:], strict=False))
    assert all(e.hash == e.recomputed_hash() for e in entries)
    # and the stored chain is exactly what was returned
    stored = [_raw(seq) for seq in range(1, 6)]
    assert [(int(i["sk"]), i["prev_hash"], i["hash"]) for i in stored] == [
        (e.seq, e.prev_hash, e.hash) for e in entries
    ]


@pytest.fixture
def serializable_dynamodb(monkeypatch):
    """Make the in-process moto server handle one DynamoDB request at a time.

    DynamoDB checks a transaction's conditions and applies its writes atomically; moto's server
    runs requests on threads without that guarantee, so two transactions can both pass the same
    condition. Serialising requests gives moto DynamoDB's isolation, so the test is about our code.
    """
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    original = DynamoHandler.call_action

    def call_action(self):
        with lock:
            return original(self)

    monkeypatch.setattr(DynamoHandler, "call_action", call_action)


@pytest.mark.usefixtures("serializable_dynamodb")
def test_concurrent_appends_all_land_with_no_gap_and_no_duplicate():
    # given eight writers recording six accesses each at the same time
    audit = services().audit
    writers, each = 8, 6
    start = threading.Barrier(writers)

    def write(writer: int) -> list[int]:
        start.wait()
        return [audit.record(audit_event(actor=f"person:w{writer}", subject_id=f"p-{i}")).seq for i in range(each)]

    with ThreadPoolExecutor(writers) as pool:
        seqs = [seq for batch in pool.map(write, range(writers)) for seq in batch]
    # then every append got its own number, with no gaps
    assert sorted(seqs) == list(range(1, writers * each + 1))
    # and the stored chain holds every writer's entries and verifies
    verification = audit.verify()
    assert verification.ok, verification.problems
    assert verification.entries_checked == writers * each
    stored_actors = [_raw(seq)["actor"] for seq in range(1, writers * each + 1)]
    assert sorted(stored_actors) == sorted(f"person:w{w}" for w in range(writers) for _ in range(each))


@pytest.mark.parametrize("purpose", ["", "   ", "\n\t"])
def test_an_access_without_a_purpose_is_refused_and_not_recorded(audit, purpose):
    with pytest.raises(ValidationFailed) as caught:
        audit.record(audit_event(purpose=purpose))
    assert [p.field for p in caught.value.problems] == ["purpose"]
    assert audit.verify().entries_checked == 0


# --- reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", [admin(), resident(), person()])
def test_only_auditors_read_the_log(audit, clock, who):
    _record_many(audit, clock, 1)
    with pytest.raises(PermissionDenied, match="only auditors"):
        audit.entries(who, AuditFilter(), limit=20, start=None)


def test_entries_come_newest_first(audit, clock):
    recorded = _record_many(audit, clock, 4)
    page = audit.entries(auditor(), AuditFilter(), limit=20, start=None)
    assert [e.seq for e in page.items] == [4, 3, 2, 1]
    assert page.items[0] == recorded[-1]
    assert page.next_key is None


def test_entries_filter_by_subject(audit, clock):
    # given accesses to two people's records
    audit.record(audit_event(subject_type="person", subject_id="p-1"))
    audit.record(audit_event(subject_type="person", subject_id="p-2"))
    audit.record(audit_event(subject_type="enterprise", subject_id="p-1"))
    audit.record(audit_event(subject_type="person", subject_id="p-1", action=AuditAction.UPDATE))
    # when an auditor asks about person p-1
    page = audit.entries(auditor(), AuditFilter(subject_type="person", subject_id="p-1"), limit=20, start=None)
    # then only accesses to that person come back, newest first
    assert [(e.seq, e.event.action) for e in page.items] == [(4, AuditAction.UPDATE), (1, AuditAction.READ)]


def test_entries_filter_by_actor(audit, clock):
    audit.record(audit_event(actor="person:officer-1"))
    audit.record(audit_event(actor="person:officer-2"))
    audit.record(audit_event(actor="person:officer-1"))
    page = audit.entries(auditor(), AuditFilter(actor="person:officer-2"), limit=20, start=None)
    assert [e.seq for e in page.items] == [2]


def test_entries_filter_by_subject_and_actor_together(audit, clock):
    # given two officers reading the same person's record
    audit.record(audit_event(actor="person:officer-1", subject_id="p-1"))
    audit.record(audit_event(actor="person:officer-2", subject_id="p-1"))
    audit.record(audit_event(actor="person:officer-1", subject_id="p-2"))
    audit.record(audit_event(actor="person:officer-1", subject_id="p-1"))
    # when an auditor asks what officer-1 did to p-1
    page = audit.entries(
        auditor(), AuditFilter(subject_type="person", subject_id="p-1", actor="person:officer-1"), limit=20, start=None
    )
    # then both filters apply
    assert [e.seq for e in page.items] == [4, 1]


def test_entries_filter_by_time_range_inclusive(audit, clock):
    # given entries one minute apart
    times = []
    for i in range(5):
        times.append(clock())
        audit.record(audit_event(subject_id=f"p-{i}"))
        clock.advance(minutes=1)
    # when an auditor asks for the second to the fourth minute
    page = audit.entries(auditor(), AuditFilter(since=times[1], until=times[3]), limit=20, start=None)
    # then exactly those entries come back, newest first
    assert [e.seq for e in page.items] == [4, 3, 2]
    # and a range combines with a subject
    page = audit.entries(
        auditor(), AuditFilter(subject_type="person", subject_id="p-1", since=times[2]), limit=20, start=None
    )
    assert page.items == []
    only_since = audit.entries(auditor(), AuditFilter(since=times[3]), limit=20, start=None)
    assert [e.seq for e in only_since.items] == [5, 4]
    only_until = audit.entries(auditor(), AuditFilter(until=times[0]), limit=20, start=None)
    assert [e.seq for e in only_until.items] == [1]


def test_a_range_that_ends_before_it_starts_is_refused(audit, clock):
    with pytest.raises(ValidationFailed) as caught:
        audit.entries(auditor(), AuditFilter(since=clock(), until=clock() - timedelta(seconds=1)), limit=20, start=None)
    assert [p.field for p in caught.value.problems] == ["since"]


@pytest.mark.parametrize("half", [{"subject_type": "person"}, {"subject_id": "p-1"}])
def test_a_subject_needs_both_type_and_id(audit, half):
    with pytest.raises(ValidationFailed) as caught:
        audit.entries(auditor(), AuditFilter(**half), limit=20, start=None)
    assert [p.field for p in caught.value.problems] == ["subject"]


@pytest.mark.parametrize("filter_", [AuditFilter(), AuditFilter(subject_type="person", subject_id="p-9")])
def test_entries_are_read_page_by_page_through_opaque_cursors(audit, clock, filter_):
    # given seven entries about the same person
    for _ in range(7):
        audit.record(audit_event(subject_type="person", subject_id="p-9"))
        clock.advance(seconds=1)
    codec = CursorCodec(get_settings().cursor_secret)
    # when an auditor reads three at a time, passing each cursor back
    pages, cursor = [], None
    while True:
        page = audit.entries(auditor(), filter_, limit=3, start=codec.decode(cursor))
        pages.append([e.seq for e in page.items])
        cursor = codec.encode(page.next_key)
        if cursor is None or len(pages) > 5:
            break
    # then the pages run newest to oldest with nothing repeated or skipped
    assert [seq for p in pages for seq in p] == [7, 6, 5, 4, 3, 2, 1]
    assert pages[:3] == [[7, 6, 5], [4, 3, 2], [1]]


# --- sealing -------------------------------------------------------------------------------------


def test_seal_writes_the_new_entries_to_the_audit_bucket_as_json_lines(audit, clock):
    # given five recorded entries
    entries = _record_many(audit, clock, 5)
    # when the log is sealed
    seal = audit.seal()
    # then the batch covers 1..5 and ends at the head's hash
    assert (seal.first_seq, seal.last_seq, seal.last_hash) == (1, 5, entries[-1].hash)
    # and the object in the audit bucket has one JSON line per entry, with its digest recorded
    body = client("s3").get_object(Bucket=_audit_bucket(), Key=seal.object_key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == seal.object_sha256
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert [line["hash"] for line in lines] == [e.hash for e in entries]
    assert lines[2] == {**entries[2].canonical(), "hash": entries[2].hash}


def test_a_second_seal_with_nothing_new_returns_none(audit, clock):
    _record_many(audit, clock, 2)
    assert audit.seal() is not None
    assert audit.seal() is None


def test_sealing_an_empty_log_returns_none(audit):
    assert audit.seal() is None


def test_each_seal_covers_only_what_came_after_the_last_one(audit, clock):
    _record_many(audit, clock, 3)
    first = audit.seal()
    _record_many(audit, clock, 2)
    second = audit.seal()
    assert (first.first_seq, first.last_seq) == (1, 3)
    assert (second.first_seq, second.last_seq) == (4, 5)
    assert first.object_key != second.object_key
    verification = audit.verify()
    assert verification.ok
    assert (verification.entries_checked, verification.seals_checked) == (5, 2)


# --- verification --------------------------------------------------------------------------------


@pytest.fixture
def sealed_log(audit, clock):
    """Five entries, sealed, then three more not yet sealed."""
    entries = _record_many(audit, clock, 5)
    audit.seal()
    entries += _record_many(audit, clock, 3)
    return entries


def test_an_untouched_log_verifies(audit, sealed_log):
    verification = audit.verify()
    assert verification.ok
    assert verification.problems == []
    assert (verification.entries_checked, verification.seals_checked) == (8, 1)


def test_an_empty_log_verifies(audit):
    verification = audit.verify()
    assert verification.ok
    assert verification.entries_checked == 0


def test_an_edited_entry_is_detected(audit, sealed_log):
    # given someone changes the purpose of entry 7 in the table but cannot fix its hash
    item = _raw(7)
    _put_raw({**item, "purpose": "routine check"})
    # then verification names exactly that entry as edited
    verification = audit.verify()
    assert [(p.seq, p.kind) for p in verification.problems] == [(7, ProblemKind.EDITED)]
    assert "does not match its hash" in verification.problems[0].message


def test_an_edited_and_rehashed_entry_breaks_the_link_of_the_next(audit, sealed_log):
    # given someone edits entry 6 and recomputes its hash
    _put_raw(_rehash({**_raw(6), "actor": "person:someone-else"}))
    # then entry 6 looks consistent alone, but entry 7 no longer follows it
    verification = audit.verify()
    assert [(p.seq, p.kind) for p in verification.problems] == [(7, ProblemKind.BROKEN_LINK)]


def test_a_rehashed_last_entry_no_longer_matches_the_head(audit, sealed_log):
    _put_raw(_rehash({**_raw(8), "purpose": "nothing to see"}))
    verification = audit.verify()
    assert _kinds(verification) == {ProblemKind.HEAD_MISMATCH}


def test_a_deleted_entry_is_detected_as_missing(audit, sealed_log):
    # given someone deletes entry 7
    _table().delete_item(Key={"pk": "LOG", "sk": 7})
    # then verification reports it missing
    verification = audit.verify()
    assert [(p.seq, p.kind) for p in verification.problems] == [(7, ProblemKind.MISSING)]
    assert "entries 7..7 are missing" in verification.problems[0].message


def test_a_deleted_last_entry_is_detected_by_the_head(audit, sealed_log):
    _table().delete_item(Key={"pk": "LOG", "sk": 8})
    verification = audit.verify()
    assert [(p.seq, p.kind) for p in verification.problems] == [(8, ProblemKind.HEAD_MISMATCH)]


def test_two_swapped_entries_are_detected_as_reordered(audit, sealed_log):
    # given someone swaps entries 6 and 7 and rehashes each for its new position
    six, seven = _raw(6), _raw(7)
    content = ("at", "at_seq", "actor", "actor_roles", "action", "subject_key", "subject_type", "subject_id",
               "purpose", "detail", "prev_hash")
    _put_raw(_rehash({**six, **{k: seven[k] for k in content}}))
    _put_raw(_rehash({**seven, **{k: six[k] for k in content}}))
    # then every entry still matches its own hash, but the links are broken from 6 on
    verification = audit.verify()
    assert _kinds(verification) == {ProblemKind.BROKEN_LINK}
    assert [p.seq for p in verification.problems] == [6, 7, 8]
    assert "reordered" in verification.problems[0].message


def test_a_whole_rewritten_tail_inside_a_sealed_range_is_caught_by_the_seal(audit, sealed_log):
    # given someone edits entry 3, rehashes it and re-links every entry after it, and moves the head
    item = _rehash({**_raw(3), "purpose": "rewritten history"})
    _put_raw(item)
    prev = item["hash"]
    for seq in range(4, 9):
        item = _rehash({**_raw(seq), "prev_hash": prev})
        _put_raw(item)
        prev = item["hash"]
    _move_head(8, prev)
    # then the chain alone looks sound, but the sealed batch in S3 disagrees with entries 3..5
    verification = audit.verify()
    assert _kinds(verification) == {ProblemKind.SEAL_MISMATCH}
    assert [p.seq for p in verification.problems] == [3, 4, 5]
    assert "differs from sealed batch" in verification.problems[0].message


def test_an_altered_sealed_object_in_s3_is_detected(audit, sealed_log):
    # given someone writes a new version of the sealed batch (object lock keeps the old one)
    s3 = client("s3")
    [sealed] = s3.list_objects_v2(Bucket=_audit_bucket(), Prefix="batches/")["Contents"]
    key = sealed["Key"]
    original = s3.get_object(Bucket=_audit_bucket(), Key=key)["Body"].read()
    forged = original.replace(b"case 2025-17", b"case 2025-99")
    assert forged != original
    s3.put_object(
        Bucket=_audit_bucket(),
        Key=key,
        Body=forged,
        ChecksumSHA256=base64.b64encode(hashlib.sha256(forged).digest()).decode(),
    )
    versions = s3.list_object_versions(Bucket=_audit_bucket(), Prefix=key)["Versions"]
    assert len(versions) == 2
    # then verification reports the batch as altered
    verification = audit.verify()
    assert [(p.seq, p.kind) for p in verification.problems] == [(1, ProblemKind.SEAL_MISMATCH)]
    assert f"sealed batch {key} was altered" in verification.problems[0].message


def test_verify_reports_problems_in_log_order(audit, sealed_log):
    _put_raw({**_raw(8), "purpose": "edited"})
    _table().delete_item(Key={"pk": "LOG", "sk": 6})
    verification = audit.verify()
    assert [(p.seq, p.kind) for p in verification.problems] == [
        (6, ProblemKind.MISSING),
        (8, ProblemKind.EDITED),
    ]


def test_stored_times_keep_microseconds_so_hashes_survive_the_round_trip(audit, clock):
    # given an entry recorded at a moment with microseconds
    clock.now = clock.now.replace(microsecond=123456)
    entry = audit.record(audit_event())
    # then the stored time is that moment exactly
    assert to_iso(datetime.strptime(_raw(1)["at"], "%Y-%m-%dT%H:%M:%S.%f%z")) == to_iso(entry.at)
    assert audit.verify().ok
