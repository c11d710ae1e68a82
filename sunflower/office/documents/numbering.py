"""Document numbers (发文字号, 收文编号): an issuing organ's code, the year and a sequence, e.g. 平政发〔2026〕12号.

Per series and year the sequence starts at 1 and never repeats or skips, however many sign-offs
happen at once (the repository's numbering transaction). The year is the district's: a document
signed at 00:10 on 1 January in Shanghai is numbered in the new year, whatever UTC says.
"""

import random
import re
import time
from zoneinfo import ZoneInfo

from sunflower.common.clock import Clock, to_iso
from sunflower.common.errors import InvalidState, ValidationFailed
from sunflower.office.documents.models import DocumentNumber
from sunflower.office.documents.repository import AlreadyNumbered, DocumentRepository, NumberTaken

# The organ's code is the characters before the year: 平政发, 平政办发, 平政函, 平政收 …
SERIES = re.compile(r"^[\u4e00-\u9fff]{2,8}$")
_PATIENCE_S = 10.0  # then the caller hears it is busy (an API request has ~29 s in all)


def check_series(series: str, field: str = "organCode") -> str:
    series = (series or "").strip()
    if not SERIES.match(series):
        raise ValidationFailed.on(field, "is an organ's code of 2 to 8 Chinese characters, e.g. 平政发")
    return series


def parse(text: str) -> DocumentNumber:
    """`平政发〔2026〕12号` -> DocumentNumber('平政发', 2026, 12)."""
    match = re.match(r"^([\u4e00-\u9fff]{2,8})〔(\d{4})〕(\d+)号$", (text or "").strip())
    if not match:
        raise ValidationFailed.on("number", "is not a document number such as 平政发〔2026〕12号")
    return DocumentNumber(match.group(1), int(match.group(2)), int(match.group(3)))


class Numbering:
    def __init__(self, repository: DocumentRepository, clock: Clock, zone: str = "Asia/Shanghai") -> None:
        self._repo = repository
        self._clock = clock
        self._zone = ZoneInfo(zone)

    def year_now(self) -> int:
        return self._clock().astimezone(self._zone).year

    def assign(self, document_id: str, series: str) -> DocumentNumber | None:
        """The next number of `series` in the district's current year, given to the document.

        Returns None if the document already had a number (the caller reads it from the document):
        asking again, after a crash or from a second caller, never takes a second number.
        """
        year = self.year_now()
        deadline = time.monotonic() + _PATIENCE_S
        attempt = 0
        while time.monotonic() < deadline:
            attempt += 1
            number = DocumentNumber(series, year, self._repo.last_number(series, year) + 1)
            try:
                self._repo.claim_number(document_id, number, at=to_iso(self._clock()))
                return number
            except AlreadyNumbered:
                return None
            except NumberTaken:
                # someone else took it: back off a little (more as contention persists) and read again
                time.sleep(random.uniform(0, 0.002 * min(attempt, 25)))
        raise InvalidState(f"too many documents of {series} are being numbered right now; try again")
