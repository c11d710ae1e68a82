"""Residency as the gate reads it, what counts as a change of it, and who learns the watchlist flag."""

import pytest
from factories import (
    a_person,
    community_staff,
    official,
    police,
    property_manager,
    resident,
)

from sunflower.auth.principals import SYSTEM
from sunflower.common.errors import PermissionDenied
from sunflower.registries.access import Visibility, may_know_watchlist, require_police, view
from sunflower.registries.models import Address, PersonStatus, Residency, ResidencyChange

HOME = "pf-youxie-xingfu"
ELSEWHERE = "pf-xinjiang-shengli"


def moved(person, community_id):
    return person.changed(current_address=Address(community_id=community_id) if community_id else None)


# --- residency -----------------------------------------------------------------------------------


def test_a_resident_is_active_in_their_current_community():
    person = a_person(community_id=HOME)
    assert Residency.of(person) == Residency(person.id, HOME, True, False)


@pytest.mark.parametrize("status", [s for s in PersonStatus if s is not PersonStatus.RESIDENT])
def test_every_status_but_resident_is_inactive(status):
    assert Residency.of(a_person(status=status)).active is False


def test_a_record_merged_into_another_is_inactive_whatever_its_status_says():
    assert Residency.of(a_person(merged_into="p-kept")).active is False


def test_residency_carries_the_watchlist_flag_and_a_missing_community_as_none():
    person = a_person(community_id=None, watchlisted=True)
    assert Residency.of(person) == Residency(person.id, None, True, True)


# --- what is a residency change ----------------------------------------------------------------------


def test_moving_to_another_community_is_a_change():
    before = a_person(community_id=HOME)
    assert ResidencyChange.between(before, moved(before, ELSEWHERE)) == ResidencyChange(before.id, HOME, ELSEWHERE, True)


def test_losing_the_community_is_a_change():
    before = a_person(community_id=HOME)
    assert ResidencyChange.between(before, moved(before, None)) == ResidencyChange(before.id, HOME, None, True)


@pytest.mark.parametrize("status", [PersonStatus.MOVED_OUT, PersonStatus.DECEASED, PersonStatus.MERGED])
def test_becoming_inactive_is_a_change_even_without_a_community(status):
    before = a_person(community_id=None)
    assert ResidencyChange.between(before, before.changed(status=status)) == ResidencyChange(before.id, None, None, False)


def test_moving_while_inactive_is_a_change():
    before = a_person(community_id=HOME, status=PersonStatus.MOVED_OUT)
    assert ResidencyChange.between(before, moved(before, ELSEWHERE)) == ResidencyChange(before.id, HOME, ELSEWHERE, False)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.changed(phone="13900001111"),
        lambda p: p.changed(current_address=Address(community_id=HOME, room="502")),
        lambda p: p.changed(watchlisted=True),
    ],
    ids=["phone", "room in the same community", "watchlist"],
)
def test_changes_that_keep_the_community_and_activity_are_none(change):
    before = a_person(community_id=HOME)
    assert ResidencyChange.between(before, change(before)) is None


def test_gaining_a_community_or_becoming_active_again_is_none():
    homeless = a_person(community_id=None)
    gone = a_person(community_id=HOME, status=PersonStatus.MOVED_OUT)
    assert ResidencyChange.between(homeless, moved(homeless, HOME)) is None
    assert ResidencyChange.between(gone, gone.changed(status=PersonStatus.RESIDENT)) is None


# --- the watchlist flag --------------------------------------------------------------------------------


def test_only_the_police_and_the_system_know_the_watchlist_flag():
    flagged = a_person(watchlisted=True)
    for viewer in (police(), SYSTEM):
        assert may_know_watchlist(viewer)
        assert view(flagged, Visibility.MASKED, viewer).watchlisted is True
    for viewer in (official(), community_staff(HOME), property_manager(HOME), resident(id=flagged.id), None):
        assert not may_know_watchlist(viewer)
        assert view(flagged, Visibility.FULL, viewer).watchlisted is None


def test_only_the_police_change_the_watchlist():
    require_police(police(), "set the watchlist")
    for actor in (official(), community_staff(HOME), property_manager(HOME), resident(), SYSTEM):
        with pytest.raises(PermissionDenied, match="only the police set the watchlist"):
            require_police(actor, "set the watchlist")
