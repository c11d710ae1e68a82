"""The audit hash chain: every field is covered, and each entry links to the one before."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import audit_event

from sunflower.audit.models import (
    GENESIS,
    AuditAction,
    Problem,
    ProblemKind,
    Verification,
    chain,
    entry_hash,
)

AT = datetime(2025, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)


def test_a_chained_entry_carries_the_hash_of_its_own_content():
    entry = chain(1, AT, audit_event(), GENESIS)
    assert len(entry.hash) == 64
    assert entry.hash == entry.recomputed_hash() == entry_hash(entry.canonical())


def test_the_canonical_form_names_every_field_of_entry_and_event():
    entry = chain(7, AT, audit_event(detail={"b": "2", "a": "1"}), "f" * 64)
    assert entry.canonical() == {
        "seq": 7,
        "at": "2025-03-01T08:00:00.123456Z",
        "actor": "person:officer-1",
        "actor_roles": ["police"],
        "action": "read",
        "subject_type": "person",
        "subject_id": "p-100",
        "purpose": "case 2025-17 identity check",
        "detail": {"a": "1", "b": "2"},
        "prev_hash": "f" * 64,
    }


@pytest.mark.parametrize(
    "event_change",
    [
        {"actor": "person:officer-2"},
        {"actor_roles": ("police", "admin")},
        {"actor_roles": ()},
        {"action": AuditAction.EXPORT},
        {"subject_type": "enterprise"},
        {"subject_id": "p-101"},
        {"purpose": "curiosity"},
        {"detail": {"field": "address"}},
        {"detail": {}},
    ],
    ids=lambda c: next(iter(c)),
)
def test_changing_any_event_field_changes_the_hash(event_change):
    # given an entry as it was chained
    original = chain(3, AT, audit_event(), "a" * 64)
    # when one field of the event is different
    edited = replace(original, event=replace(original.event, **event_change))
    # then the stored hash no longer matches the content
    assert edited.recomputed_hash() != original.hash


@pytest.mark.parametrize(
    "entry_change",
    [{"seq": 4}, {"at": AT + timedelta(microseconds=1)}, {"prev_hash": "b" * 64}],
    ids=lambda c: next(iter(c)),
)
def test_changing_seq_time_or_link_changes_the_hash(entry_change):
    original = chain(3, AT, audit_event(), "a" * 64)
    edited = replace(original, **entry_change)
    assert edited.recomputed_hash() != original.hash


def test_the_hash_does_not_depend_on_the_order_detail_was_written_in():
    one = chain(1, AT, audit_event(detail={"a": "1", "b": "2"}), GENESIS)
    other = chain(1, AT, audit_event(detail={"b": "2", "a": "1"}), GENESIS)
    assert one.hash == other.hash


def test_the_same_moment_in_another_zone_hashes_the_same():
    shanghai = AT.astimezone(ZoneInfo("Asia/Shanghai"))
    assert chain(1, shanghai, audit_event(), GENESIS).hash == chain(1, AT, audit_event(), GENESIS).hash


def test_chain_links_each_entry_to_the_hash_of_the_one_before():
    # given three events chained in order from the genesis hash
    first = chain(1, AT, audit_event(subject_id="p-1"), GENESIS)
    second = chain(2, AT + timedelta(seconds=1), audit_event(subject_id="p-2"), first.hash)
    third = chain(3, AT + timedelta(seconds=2), audit_event(subject_id="p-3"), second.hash)
    # then each carries the previous hash, and all hashes differ
    assert first.prev_hash == GENESIS == "0" * 64
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert len({first.hash, second.hash, third.hash}) == 3


def test_the_same_event_at_another_place_in_the_chain_hashes_differently():
    event = audit_event()
    assert chain(1, AT, event, GENESIS).hash != chain(2, AT, event, GENESIS).hash


def test_a_naive_time_cannot_be_hashed():
    with pytest.raises(ValueError, match="naive"):
        chain(1, datetime(2025, 3, 1, 8, 0), audit_event(), GENESIS)


def test_a_verification_is_ok_only_without_problems():
    assert Verification(3, 1, []).ok
    assert not Verification(3, 1, [Problem(2, ProblemKind.EDITED, "content does not match its hash")]).ok
