"""Working days in the district: weekends, public holidays and the adjusted working weekends (调休).

The official schedule is the State Council General Office's yearly notice (国务院办公厅关于…部分节假日安排的
通知). It comes from the `chinesecalendar` package (PyPI, MIT, https://github.com/LKI/chinese-calendar),
which transcribes each notice when it is published; version 1.11 covers 2004-2026. For a year the
package does not cover yet, the calendar falls back to Monday-Friday and says so through
`WorkCalendar.covers(year)`: upgrade the package when the next notice appears (each November).
"""

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

_DEFAULT_ZONE = "Asia/Shanghai"


def _official(day: date) -> bool | None:
    """Whether the official schedule makes `day` a working day; None outside the years it covers."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return None


class WorkCalendar:
    def __init__(self, zone: str = _DEFAULT_ZONE, *, schedule: Callable[[date], bool | None] = _official) -> None:
        self.zone = ZoneInfo(zone)
        self._schedule = lru_cache(maxsize=4096)(schedule)

    def covers(self, year: int) -> bool:
        """Whether the official holiday schedule for `year` is known (otherwise only weekends count)."""
        return self._schedule(date(year, 6, 1)) is not None

    def is_working_day(self, day: date) -> bool:
        official = self._schedule(day)
        return official if official is not None else day.weekday() < 5

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def end_of_day(self, day: date) -> datetime:
        """The instant a deadline on `day` passes: midnight after it, district time."""
        return datetime.combine(day + timedelta(days=1), time(0), self.zone)

    def at(self, day: date, hour: int = 9) -> datetime:
        return datetime.combine(day, time(hour), self.zone)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days d with start < d <= end (0 when end is not after start)."""
        count, day = 0, start + timedelta(days=1)
        while day <= end:
            count += self.is_working_day(day)
            day += timedelta(days=1)
        return count

    def add_working_days(self, day: date, n: int) -> date:
        """The n-th working day after `day` (before it for negative n); `day` itself for n == 0."""
        step = 1 if n >= 0 else -1
        remaining = abs(n)
        while remaining:
            day += timedelta(days=step)
            remaining -= self.is_working_day(day)
        return day
