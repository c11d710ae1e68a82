"""Ids are ULIDs, made in one place."""

from ulid import ULID

from sunflower.common.ids import is_id, new_id


def test_a_new_id_is_a_26_character_ulid():
    value = new_id()
    assert len(value) == 26
    assert is_id(value)
    assert str(ULID.from_str(value)) == value


def test_new_ids_do_not_repeat():
    assert len({new_id() for _ in range(2000)}) == 2000


def test_ids_made_later_sort_after_ids_made_earlier_across_milliseconds():
    # given an id from a ULID minted one second earlier
    later = ULID.from_str(new_id())
    earlier = ULID.from_timestamp(later.timestamp - 1)
    # then string order is time order (listings sort by id)
    assert str(earlier) < str(later)


def test_things_that_are_not_ulids_are_not_ids():
    for value in ["", "abc", "0" * 25, "0" * 27, "01J0000000000000000000000U", "not-a-ulid-at-all-xxxxxxxx"]:
        assert not is_id(value), value
