"""Resident identity card numbers (居民身份证号码, GB 11643-1999) and phone numbers.

Pure validators: no I/O beyond python-stdnum's bundled GB/T 2260 region table. Each failure
names the rule that failed so a clerk can fix the right digit.

Region codes come from `stdnum/cn/loc.dat` (every code since about 1980, with the years it
was in use). Any code that ever existed is accepted, whatever the birth year: a person keeps
the number first issued, so abolished codes (110103 崇文区) and codes that postdate the birth
both occur in real registries. `stdnum.cn.ric.validate` instead requires the code to be in use
in the birth year, and loc.dat dates most codes from 1983, so it rejects for instance everyone
from 230108 (this district) born before 1983; that is why it is not used here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Literal

from stdnum import numdb

from sunflower.common.errors import FieldProblem, ValidationFailed
from sunflower.registries.models import Sex

__all__ = [
    "IdNumber",
    "IdRule",
    "InvalidIdNumber",
    "Sex",
    "check_character",
    "is_region_code",
    "normalise",
    "parse_id_number",
    "parse_phone",
    "region_name",
]

IdRule = Literal[
    "length", "characters", "region", "birth_date", "future_birth_date", "check_character"
]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_MAP = "10X98765432"
# Residence permits for Taiwan residents (台湾居民居住证, 2018) use GB 11643 numbers with the
# address code 830000, which is not a GB/T 2260 code (810000/820000 for Hong Kong and Macao are).
_RESIDENCE_PERMIT_REGIONS = frozenset({"830000"})
# No number was ever issued to someone born this early; a year like 0100 is a typo.
_EARLIEST_BIRTH_YEAR = 1850

# Full-width ASCII forms (U+FF01..U+FF5E) map to ASCII by a fixed offset; U+3000 is the
# ideographic space. Chinese office spreadsheets are full of both.
# Zero-width marks (and the byte-order mark) come along with copy and paste; never meaningful.
_HALFWIDTH: dict[int, int | None] = (
    {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
    | {0x3000: 0x20}
    | dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
)


def normalise(text: str) -> str:
    """Full-width characters as ASCII, zero-width marks and surrounding whitespace removed."""
    return text.translate(_HALFWIDTH).strip()


class InvalidIdNumber(ValidationFailed):
    """An identity card number that breaks `rule`; the message says how."""

    def __init__(self, rule: IdRule, message: str, *, field: str = "idNumber") -> None:
        super().__init__(f"{field}: {message}", problems=(FieldProblem(field, message),))
        self.rule = rule


@dataclass(frozen=True)
class IdNumber:
    value: str  # always 18 characters, check character X upper-case
    region_code: str
    birth_date: date
    sex: Sex

    @property
    def masked(self) -> str:
        return self.value[:6] + "*" * 8 + self.value[-4:]

    @property
    def region_name(self) -> str | None:
        """The region as named in the birth year (names change; the code does not)."""
        return region_name(self.region_code, year=self.birth_date.year)

    def age_on(self, day: date) -> int:
        """Completed years on `day` (someone born on 29 February turns a year older on 1 March)."""
        had_birthday = (day.month, day.day) >= (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - (0 if had_birthday else 1)

    def __repr__(self) -> str:  # the full number is personal data and must not reach logs
        return f"IdNumber({self.masked})"

    __str__ = __repr__


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits of an identity number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("check_character needs exactly 17 ASCII digits")
    return _CHECK_MAP[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def parse_id_number(text: str, *, today: date, field: str = "idNumber") -> IdNumber:
    """Validate an 18-character (or old 15-digit) identity number; raise `InvalidIdNumber`."""

    def fail(rule: IdRule, message: str) -> InvalidIdNumber:
        return InvalidIdNumber(rule, message, field=field)

    value = normalise(text).upper()
    if not value:
        raise fail("length", "is empty; must be 18 characters (or an old 15-digit number)")
    if len(value) not in (15, 18):
        raise fail("length", f"must be 18 characters (or an old 15-digit number), not {len(value)}")
    for position, char in enumerate(value, start=1):
        if "0" <= char <= "9" or (char == "X" and position == 18):
            continue
        if len(value) == 15:
            raise fail(
                "characters",
                f"character {position} is {char!r}; an old 15-digit number has only digits",
            )
        raise fail(
            "characters",
            f"character {position} is {char!r}; only digits are allowed, and X only as the 18th (check) character",
        )

    region = value[:6]
    if not (is_region_code(region) or region in _RESIDENCE_PERMIT_REGIONS):
        raise fail("region", f"{region} is not an administrative region code (GB/T 2260)")

    # First-generation numbers (1984-1999) carry a 2-digit year of a 19xx birth and no check character.
    digits17 = value[:6] + "19" + value[6:] if len(value) == 15 else value[:17]
    ymd = digits17[6:14]
    try:
        born = date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
    except ValueError:
        raise fail("birth_date", f"birth date {ymd} is not a real date") from None
    if born.year < _EARLIEST_BIRTH_YEAR:
        raise fail("birth_date", f"birth date {born.isoformat()} is before {_EARLIEST_BIRTH_YEAR}")
    if born > today:
        raise fail("future_birth_date", f"birth date {born.isoformat()} is in the future")

    expected = check_character(digits17)
    if len(value) == 18 and value[17] != expected:
        raise fail(
            "check_character",
            f"check character should be {expected}, not {value[17]} (ISO 7064 MOD 11-2)",
        )

    return IdNumber(
        value=digits17 + expected,
        region_code=region,
        birth_date=born,
        sex=Sex.MALE if int(digits17[16]) % 2 else Sex.FEMALE,
    )


# --- GB/T 2260 administrative divisions ---------------------------------------------------

_Name = tuple[int | None, int | None, str]  # (first year, last year, name); None = open-ended
_YEARS = re.compile(r"^\[(\d*)-(\d*)\](.*)$")
# Prefecture-level placeholders that say nothing a reader wants to see in an address.
_PLACEHOLDER_MARKERS = ("市辖区", "直辖")


@lru_cache(maxsize=8192)
def _names(code: str) -> tuple[_Name, ...]:
    """Every name `code` has had, oldest first; empty if it is not a GB/T 2260 code."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return ()
    parts = numdb.get("cn/loc").info(code)
    if len(parts) != 2 or parts[1][0] != code[2:] or "county" not in parts[1][1]:
        return ()
    names: list[_Name] = []
    for entry in parts[1][1]["county"].split(","):
        match = _YEARS.match(entry)
        if match:
            start, end, name = match.groups()
            names.append((int(start) if start else None, int(end) if end else None, name))
        else:
            names.append((None, None, entry))
    return tuple(names)


def _province(code: str) -> str | None:
    parts = numdb.get("cn/loc").info(code)
    return parts[0][1].get("province") if parts and parts[0][0] == code[:2] else None


def _name_in(names: tuple[_Name, ...], year: int | None) -> str:
    if year is not None:
        for start, end, name in names:
            if (start is None or year >= start) and (end is None or year <= end):
                return name
        first_start = names[0][0]
        if first_start is not None and year < first_start:
            return names[0][2]  # born before the code existed: the name it was first issued under
    return names[-1][2]  # the most recent name


def is_region_code(code: str) -> bool:
    """Whether `code` is, or ever was, a 6-digit GB/T 2260 administrative division code."""
    return bool(_names(code))


def region_name(code: str, *, year: int | None = None) -> str | None:
    """'黑龙江省 哈尔滨市 平房区' for 230108: province, prefecture and county as named in `year`
    (default: the latest names); None if `code` is not a GB/T 2260 code."""
    if not _names(code):
        return None
    shown: list[str] = []
    for level in dict.fromkeys((code[:2] + "0000", code[:4] + "00", code)):
        names = _names(level)
        name = (
            _name_in(names, year)
            if names
            else (_province(code) if level.endswith("0000") else None)
        )
        if (
            name
            and name not in shown
            and name != "县"
            and not any(m in name for m in _PLACEHOLDER_MARKERS)
        ):
            shown.append(name)
    return " ".join(shown)


# --- Phone numbers -------------------------------------------------------------------------

_PHONE_SEPARATORS = str.maketrans("", "", " -()\u2010\u2011\u2012\u2013\u2014")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{9,11}")
_PHONE_HELP = (
    "must be a mainland mobile number (11 digits starting 13-19) "
    "or a landline with its area code, such as 0451-86123456"
)


def parse_phone(text: str, *, field: str = "phone") -> str:
    """A mainland phone number as '13812345678' (mobile) or '0451-86123456' (landline)."""
    value = normalise(text).translate(_PHONE_SEPARATORS)
    international = False
    for prefix in ("+86", "0086"):
        if value.startswith(prefix):
            value, international = value[len(prefix) :], True
            break
    if not value.isascii() or not value.isdigit():
        raise ValidationFailed.on(
            field, f"{_PHONE_HELP}; only digits, spaces, dashes and a +86 prefix are allowed"
        )
    # After +86, Beijing's area code appears as 10, which no mobile number starts with.
    if value.startswith("1") and not (international and value.startswith("10")):
        if _MOBILE.fullmatch(value):
            return value
        raise ValidationFailed.on(field, _PHONE_HELP)
    if international and not value.startswith("0"):
        value = "0" + value  # +86 451 ... drops the trunk prefix 0
    if not _LANDLINE.fullmatch(value):
        if not value.startswith("0") and 7 <= len(value) <= 8:
            raise ValidationFailed.on(field, f"{_PHONE_HELP}; the area code is missing")
        raise ValidationFailed.on(field, _PHONE_HELP)
    # Three-digit area codes are 010 (Beijing) and 02x (the large cities); all others are four.
    area_length = 3 if value.startswith(("010", "02")) else 4
    area, local = value[:area_length], value[area_length:]
    if not (7 <= len(local) <= 8) or local[0] in "01":
        raise ValidationFailed.on(
            field,
            f"{_PHONE_HELP}; after area code {area} the local number must be 7 or 8 digits not starting 0 or 1",
        )
    return f"{area}-{local}"
