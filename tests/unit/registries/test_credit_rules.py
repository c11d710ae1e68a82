"""Credit rules: how records add up to a score, a grade A-D and the red and black lists, and when that changes."""

from datetime import date, timedelta

import pytest
from factories import credit_record

from sunflower.registries.credit import compute_profile, grade_of, next_change
from sunflower.registries.models import CreditCategory as C
from sunflower.registries.models import SubjectType

TODAY = date(2026, 3, 15)
RECENT = date(2025, 6, 1)


def profile(*records, today: date = TODAY):
    return compute_profile(SubjectType.PERSON, "p-1", list(records), today)


def records_of(category: C, n: int, *, start: date = RECENT):
    return [credit_record(category, decided_on=start + timedelta(days=i)) for i in range(n)]


# --- scores and caps ----------------------------------------------------------------------------


def test_a_subject_without_records_scores_the_base_and_grade_b():
    p = profile()
    assert (p.score, p.grade, p.red_list, p.black_list, p.factors, p.record_count) == (100, "B", False, False, (), 0)
    assert p.computed_on == TODAY and p.subject_id == "p-1" and p.subject_type is SubjectType.PERSON


@pytest.mark.parametrize(
    "category, points",
    [
        (C.COMMENDATION, 5),
        (C.RED_LIST, 10),
        (C.CONTRACT_COMPLIANCE, 5),
        (C.TAX_CREDIT_A, 5),
        (C.ADMINISTRATIVE_LICENCE, 0),
        (C.ADMINISTRATIVE_PENALTY, -10),
        (C.ARREARS, -5),
        (C.COMPLAINT, -3),
        (C.DISHONEST_JUDGMENT_DEBTOR, -40),
        (C.SERIOUS_DISHONESTY_LIST, -50),
    ],
)
def test_one_record_of_each_category_weighs_its_points(category, points):
    record = credit_record(category, decided_on=RECENT, decision_number="平市监〔2025〕7号")
    p = profile(record)
    assert p.score == 100 + points
    assert len(p.factors) == 1
    assert p.factors[0].points == points and p.factors[0].record_id == record.id
    assert "平市监〔2025〕7号" in p.factors[0].description


@pytest.mark.parametrize(
    "category, n, total",
    [
        (C.COMMENDATION, 4, 15),
        (C.RED_LIST, 2, 10),
        (C.CONTRACT_COMPLIANCE, 3, 5),
        (C.TAX_CREDIT_A, 2, 5),
        (C.ADMINISTRATIVE_PENALTY, 6, -40),
        (C.ARREARS, 5, -15),
        (C.COMPLAINT, 4, -9),
        (C.DISHONEST_JUDGMENT_DEBTOR, 2, -40),
        (C.SERIOUS_DISHONESTY_LIST, 2, -50),
    ],
)
def test_each_category_weighs_no_more_than_its_cap(category, n, total):
    assert profile(*records_of(category, n)).score == 100 + total


def test_the_cap_is_reached_by_the_earliest_records_and_later_ones_add_nothing():
    # given four commendations (cap 15, 5 each), the latest decided first in the list
    records = list(reversed(records_of(C.COMMENDATION, 4)))
    # when scored / then the three earliest count in full and the latest adds nothing
    by_record = {f.record_id: f.points for f in profile(*records).factors}
    assert [by_record[r.id] for r in sorted(records, key=lambda r: r.decided_on)] == [5, 5, 5, 0]


def test_categories_are_capped_separately_and_added_up():
    records = records_of(C.COMMENDATION, 1) + records_of(C.ADMINISTRATIVE_PENALTY, 2) + records_of(C.ARREARS, 1)
    assert profile(*records).score == 100 + 5 - 20 - 5


# --- grades -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "score, grade",
    [(130, "A"), (105, "A"), (104, "B"), (90, "B"), (89, "C"), (70, "C"), (69, "D"), (0, "D")],
)
def test_grade_boundaries(score, grade):
    assert grade_of(score, black_list=False) == grade


def test_the_black_list_is_grade_d_whatever_the_score():
    assert grade_of(130, black_list=True) == "D"


@pytest.mark.parametrize(
    "records, grade",
    [
        (records_of(C.COMMENDATION, 1), "A"),  # 105
        (records_of(C.ADMINISTRATIVE_PENALTY, 1), "B"),  # 90
        (records_of(C.ADMINISTRATIVE_PENALTY, 2), "C"),  # 80
        (records_of(C.ADMINISTRATIVE_PENALTY, 3), "C"),  # 70
        (records_of(C.ADMINISTRATIVE_PENALTY, 3) + records_of(C.COMPLAINT, 1), "D"),  # 67
    ],
)
def test_grades_follow_the_score(records, grade):
    assert profile(*records).grade == grade


# --- red and black lists ------------------------------------------------------------------------


@pytest.mark.parametrize("category", [C.DISHONEST_JUDGMENT_DEBTOR, C.SERIOUS_DISHONESTY_LIST])
def test_a_joint_punishment_list_entry_forces_grade_d_despite_every_merit(category):
    # given a black-list entry and every merit there is (100 - 40 + 15 + 10 + 5 + 5 = 95 at worst)
    merits = (records_of(C.COMMENDATION, 3) + records_of(C.RED_LIST, 1) + records_of(C.CONTRACT_COMPLIANCE, 1)
              + records_of(C.TAX_CREDIT_A, 1))
    p = profile(credit_record(category, decided_on=RECENT), *merits)
    # then the subject is on the black list, grade D, and not on the red list
    assert p.score >= 70
    assert (p.grade, p.black_list, p.red_list) == ("D", True, False)


def test_a_red_list_entry_puts_the_subject_on_the_red_list():
    p = profile(*records_of(C.RED_LIST, 1))
    assert (p.red_list, p.black_list, p.grade, p.score) == (True, False, "A", 110)


def test_a_black_list_entry_out_of_force_no_longer_blacklists():
    expired = credit_record(C.DISHONEST_JUDGMENT_DEBTOR, decided_on=RECENT, valid_until=TODAY - timedelta(days=1))
    p = profile(expired)
    assert (p.black_list, p.grade, p.score, p.record_count) == (False, "B", 100, 1)


# --- which records count --------------------------------------------------------------------------


def test_a_record_counts_through_its_last_day_in_force_and_not_after():
    record = credit_record(C.ADMINISTRATIVE_PENALTY, decided_on=RECENT, valid_until=TODAY)
    assert profile(record).score == 90
    assert profile(record, today=TODAY + timedelta(days=1)).score == 100


def test_a_record_older_than_three_years_no_longer_counts():
    last_day = TODAY - timedelta(days=3 * 365)
    assert profile(credit_record(C.ADMINISTRATIVE_PENALTY, decided_on=last_day)).score == 90
    assert profile(credit_record(C.ADMINISTRATIVE_PENALTY, decided_on=last_day - timedelta(days=1))).score == 100
    assert profile(credit_record(C.COMMENDATION, decided_on=last_day - timedelta(days=1))).score == 100


@pytest.mark.parametrize("category, points", [(C.DISHONEST_JUDGMENT_DEBTOR, -40), (C.RED_LIST, 10)])
def test_list_entries_count_while_in_force_however_old(category, points):
    p = profile(credit_record(category, decided_on=date(2015, 1, 1)))
    assert p.score == 100 + points


def test_a_record_decided_in_the_future_does_not_count_yet():
    assert profile(credit_record(C.ADMINISTRATIVE_PENALTY, decided_on=TODAY + timedelta(days=1))).score == 100


def test_records_that_do_not_count_are_still_counted_as_records_but_are_no_factors():
    old = credit_record(C.ADMINISTRATIVE_PENALTY, decided_on=date(2020, 1, 1))
    expired = credit_record(C.ARREARS, decided_on=RECENT, valid_until=RECENT)
    p = profile(old, expired)
    assert (p.record_count, p.factors, p.score) == (2, (), 100)


# --- when the profile changes ---------------------------------------------------------------------


def test_without_records_the_profile_never_changes():
    assert next_change([], TODAY) is None


def test_a_record_out_of_force_never_changes_the_profile_again():
    expired = credit_record(C.ADMINISTRATIVE_PENALTY, decided_on=RECENT, valid_until=date(2026, 1, 31))
    assert profile(expired).score == 100
    assert next_change([expired], TODAY) is None


def test_a_list_entry_without_an_end_never_changes_the_profile():
    assert next_change([credit_record(C.SERIOUS_DISHONESTY_LIST, decided_on=date(2015, 1, 1))], TODAY) is None


def test_a_record_in_force_until_a_day_changes_the_profile_the_day_after():
    record = credit_record(C.RED_LIST, decided_on=RECENT, valid_until=date(2026, 6, 30))
    assert next_change([record], TODAY) == date(2026, 7, 1)


def test_a_record_changes_the_profile_when_it_is_three_years_old():
    record = credit_record(C.ADMINISTRATIVE_PENALTY, decided_on=RECENT)
    assert next_change([record], TODAY) == RECENT + timedelta(days=3 * 365 + 1)


def test_a_record_decided_in_the_future_changes_the_profile_on_its_decision_day():
    record = credit_record(C.COMMENDATION, decided_on=date(2026, 4, 1))
    assert next_change([record], TODAY) == date(2026, 4, 1)


def test_the_earliest_change_of_several_records_is_the_next_change():
    records = [
        credit_record(C.ADMINISTRATIVE_PENALTY, decided_on=RECENT),  # ages out 2028-06-01
        credit_record(C.RED_LIST, decided_on=RECENT, valid_until=date(2027, 1, 31)),  # out of force 2027-02-01
        credit_record(C.DISHONEST_JUDGMENT_DEBTOR, decided_on=RECENT),  # never
    ]
    assert next_change(records, TODAY) == date(2027, 2, 1)


@pytest.mark.parametrize(
    "record",
    [
        credit_record(C.ADMINISTRATIVE_PENALTY, decided_on=RECENT),
        credit_record(C.RED_LIST, decided_on=RECENT, valid_until=date(2026, 9, 30)),
        credit_record(C.DISHONEST_JUDGMENT_DEBTOR, decided_on=RECENT, valid_until=date(2026, 5, 1)),
        credit_record(C.COMMENDATION, decided_on=date(2026, 4, 1)),
    ],
)
def test_the_profile_stays_the_same_until_the_next_change_and_differs_on_it(record):
    # given a profile computed today and the day it is said to change next
    today_profile = profile(record)
    change = next_change([record], TODAY)
    # then the day before, the profile scores the same; on that day it does not
    assert profile(record, today=change - timedelta(days=1)).score == today_profile.score
    assert profile(record, today=change).score != today_profile.score
