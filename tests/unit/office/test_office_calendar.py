"""Working days with the State Council schedule, and the supervision traffic light built on them."""

from datetime import UTC, date, datetime

import pytest

from sunflower.office.calendar import WorkCalendar
from sunflower.office.supervision.models import (
    Milestone,
    SourceKind,
    SupervisionItem,
    SupervisionStatus,
    TrafficLight,
    reminder_instant,
    statistics,
    traffic_light,
)

CAL = WorkCalendar("Asia/Shanghai")


def _item(deadline: date, *, milestones=(), status=SupervisionStatus.IN_PROGRESS, on_time=None, dept="housing"):
    return SupervisionItem(
        id="i1", title="t", detail="", source=SourceKind.LEADER_INSTRUCTION, source_ref=None, leader_id="mayor",
        responsible_department=dept, assisting_departments=(), deadline=deadline, milestones=tuple(milestones),
        status=status, instance_id="x", created_by="person:c", created_at=datetime(2026, 9, 1, tzinfo=UTC),
        completed_on_time=on_time,
    )


def _local(y, m, d, h=10):
    """A moment given in district time."""
    return datetime(y, m, d, h, tzinfo=CAL.zone)


@pytest.mark.parametrize(
    "day, working",
    [
        (date(2026, 9, 30), True),  # Wednesday before the holiday
        (date(2026, 10, 1), False),  # National Day
        (date(2026, 10, 7), False),  # last day of the Golden Week
        (date(2026, 10, 8), True),
        (date(2026, 10, 10), True),  # a Saturday made a working day (调休)
        (date(2026, 9, 20), True),  # a Sunday made a working day (调休)
        (date(2026, 10, 11), False),  # an ordinary Sunday
        (date(2025, 1, 28), False),  # Spring Festival eve, 2025
    ],
)
def test_official_schedule_with_adjusted_weekends(day, working):
    assert CAL.is_working_day(day) is working


def test_a_year_without_a_published_schedule_falls_back_to_weekdays():
    # given a schedule that knows nothing (as for a year the State Council has not announced yet)
    cal = WorkCalendar(schedule=lambda d: None)
    assert not cal.covers(2099)
    assert cal.is_working_day(date(2099, 10, 1)) is True  # a Thursday
    assert cal.is_working_day(date(2099, 10, 3)) is False  # a Saturday


def test_working_days_skip_the_golden_week():
    # Tuesday 29 September to Friday 9 October 2026: only 30 Sep, 8 and 9 Oct are working days
    assert CAL.working_days_between(date(2026, 9, 29), date(2026, 10, 9)) == 3
    assert CAL.add_working_days(date(2026, 10, 9), -3) == date(2026, 9, 29)
    assert CAL.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)


@pytest.mark.parametrize(
    "now, light",
    [
        (_local(2026, 9, 28), TrafficLight.GREEN),  # 4 working days left: 29, 30 Sep, 8, 9 Oct
        (_local(2026, 9, 29), TrafficLight.YELLOW),  # 3 left, although 10 calendar days away
        (_local(2026, 10, 9, 23), TrafficLight.YELLOW),  # the deadline day itself, before midnight
        (_local(2026, 10, 10, 0), TrafficLight.RED),  # midnight after the deadline, district time
    ],
)
def test_traffic_light_around_national_day_2026(now, light):
    status = traffic_light(_item(date(2026, 10, 9)), now, CAL)
    assert status.light is light


def test_without_holidays_the_same_day_would_be_green():
    weekdays_only = WorkCalendar(schedule=lambda d: None)
    assert traffic_light(_item(date(2026, 10, 9)), _local(2026, 9, 29), weekdays_only).light is TrafficLight.GREEN


def test_the_deadline_passes_at_district_midnight_not_utc_midnight():
    # 23:30 UTC on 9 Oct is 07:30 on 10 Oct in Shanghai: overdue
    assert traffic_light(_item(date(2026, 10, 9)), datetime(2026, 10, 9, 23, 30, tzinfo=UTC), CAL).light is TrafficLight.RED
    # 15:30 UTC on 9 Oct is 23:30 on 9 Oct in Shanghai: not yet
    assert traffic_light(_item(date(2026, 10, 9)), datetime(2026, 10, 9, 15, 30, tzinfo=UTC), CAL).light is TrafficLight.YELLOW


def test_an_open_milestone_drives_the_light_and_a_done_one_does_not():
    deadline = date(2026, 12, 31)
    late = Milestone("m1", "plan", date(2026, 11, 2))
    item = _item(deadline, milestones=[late])
    status = traffic_light(item, _local(2026, 11, 3), CAL)
    assert (status.light, status.due, status.overdue) == (TrafficLight.RED, date(2026, 11, 2), True)
    done = _item(deadline, milestones=[Milestone("m1", "plan", date(2026, 11, 2), done_on=date(2026, 11, 1))])
    assert traffic_light(done, _local(2026, 11, 3), CAL).light is TrafficLight.GREEN


def test_completed_items_show_whether_they_were_on_time():
    on_time = _item(date(2026, 10, 9), status=SupervisionStatus.COMPLETED, on_time=True)
    late = _item(date(2026, 10, 9), status=SupervisionStatus.COMPLETED, on_time=False)
    assert traffic_light(on_time, _local(2027, 1, 1), CAL).light is TrafficLight.GREEN
    assert traffic_light(late, _local(2027, 1, 1), CAL).light is TrafficLight.RED


def test_the_reminder_is_due_when_the_light_turns_yellow():
    assert reminder_instant(date(2026, 10, 9), _local(2026, 9, 1), CAL) == _local(2026, 9, 29, 9)
    # an item created when it is already yellow is reminded at once
    now = _local(2026, 10, 8)
    assert reminder_instant(date(2026, 10, 9), now, CAL) == now


def test_on_time_statistics_per_department():
    now = _local(2026, 11, 1)
    items = [
        _item(date(2026, 10, 9), status=SupervisionStatus.COMPLETED, on_time=True),
        _item(date(2026, 10, 9), status=SupervisionStatus.COMPLETED, on_time=False),
        _item(date(2026, 10, 20)),  # open and overdue
        _item(date(2026, 12, 1)),  # open, not yet due
        _item(date(2026, 10, 9), status=SupervisionStatus.COMPLETED, on_time=True, dept="water"),
    ]
    housing, water = statistics(items, now, CAL)
    assert (housing.department_id, housing.total, housing.completed, housing.completed_on_time) == ("housing", 4, 2, 1)
    assert (housing.open, housing.overdue_open, housing.due, housing.on_time_rate) == (2, 1, 3, round(1 / 3, 4))
    assert (water.department_id, water.on_time_rate) == ("water", 1.0)
