"""Realistic synthetic registry data for tests, the demo seed and benchmarks.

Every function draws only from the `random.Random` it is given, so a seed reproduces the data.
Numbers are valid (check characters computed, real GB/T 2260 regions) but invented; 230108 is
哈尔滨市平房区, the district this system serves.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date

from sunflower.registries.identifiers import Sex, check_character, is_region_code
from sunflower.registries.industry import DIVISIONS, section_of
from sunflower.registries.uscc import (
    ALPHABET,
    AUTHORITIES,
    NATIONAL_REGION,
    organisation_check_character,
)
from sunflower.registries.uscc import check_character as credit_check_character

__all__ = [
    "credit_code",
    "id_number",
    "industry_code",
    "landline_phone",
    "mobile_phone",
    "person_name",
    "unique_credit_codes",
    "unique_id_numbers",
]

DISTRICT_REGION = "230108"
_EARLIEST_BIRTH = date(1935, 1, 1).toordinal()
_LATEST_BIRTH = date(2020, 12, 31).toordinal()  # fixed, so output does not depend on the run date


def id_number(
    rng: random.Random,
    *,
    region: str = DISTRICT_REGION,
    born: date | None = None,
    sex: Sex | None = None,
) -> str:
    """A valid 18-character identity number (GB 11643) for someone registered in `region`."""
    if not is_region_code(region):
        raise ValueError(f"{region} is not a GB/T 2260 region code")
    if born is None:
        born = date.fromordinal(rng.randint(_EARLIEST_BIRTH, _LATEST_BIRTH))
    if sex is None:
        sex = rng.choice((Sex.MALE, Sex.FEMALE))
    # The sequence number is odd for men, even for women; 000 is never issued.
    sequence = 2 * rng.randint(0, 499) + 1 if sex is Sex.MALE else 2 * rng.randint(1, 499)
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)


def credit_code(
    rng: random.Random,
    *,
    region: str = DISTRICT_REGION,
    authority: str = "9",
    entity_type: str = "1",
) -> str:
    """A valid unified social credit code (GB 32100), organisation code check included."""
    if authority not in AUTHORITIES or entity_type not in AUTHORITIES[authority][1]:
        raise ValueError(
            f"{authority}{entity_type} is not an authority and entity type of GB 32100"
        )
    if region != NATIONAL_REGION and not is_region_code(region):
        raise ValueError(f"{region} is not a GB/T 2260 region code")
    if rng.random() < 0.5:
        # Codes assigned since 2015 start MA; older ones carry the 8-digit organisation code.
        body = "MA" + "".join(rng.choice(ALPHABET) for _ in range(6))
    else:
        body = f"{rng.randint(10_000_000, 99_999_999)}"
    first17 = f"{authority}{entity_type}{region}{body}{organisation_check_character(body)}"
    return first17 + credit_check_character(first17)


def _unique(draw: Callable[[], str], count: int) -> list[str]:
    seen: dict[str, None] = {}
    attempts = 0
    while len(seen) < count:
        attempts += 1
        if attempts > 20 * count + 1000:
            raise ValueError(f"cannot draw {count} distinct values with these parameters")
        seen.setdefault(draw(), None)
    return list(seen)


def unique_id_numbers(
    rng: random.Random,
    count: int,
    *,
    region: str = DISTRICT_REGION,
    born: date | None = None,
    sex: Sex | None = None,
) -> list[str]:
    """`count` distinct identity numbers (redrawing the rare repeats), in draw order."""
    return _unique(lambda: id_number(rng, region=region, born=born, sex=sex), count)


def unique_credit_codes(
    rng: random.Random,
    count: int,
    *,
    region: str = DISTRICT_REGION,
    authority: str = "9",
    entity_type: str = "1",
) -> list[str]:
    """`count` distinct credit codes, in draw order."""
    return _unique(
        lambda: credit_code(rng, region=region, authority=authority, entity_type=entity_type), count
    )


# The hundred commonest surnames, commonest first (drawn with falling weights), and a few
# two-character ones.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_SURNAME_WEIGHTS = tuple(1 / (rank + 5) for rank in range(len(_SURNAMES)))
_COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫")
_GIVEN = {
    Sex.MALE: "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林峰建国志文博晨阳毅东亮成海",
    Sex.FEMALE: "芳娜敏静秀丽艳娟霞燕玲桂丹萍红玉兰婷雪慧颖琳晶欣怡倩洁梅莉悦佳雨思梦涵琪璐月彤瑶",
}
_GIVEN_EITHER = "子嘉一晓春秋俊文明新安心若立天佳"


def person_name(rng: random.Random, *, sex: Sex | None = None) -> str:
    """A plausible Chinese personal name: surname plus a one- or two-character given name."""
    if sex is None:
        sex = rng.choice((Sex.MALE, Sex.FEMALE))
    if rng.random() < 0.01:
        surname = rng.choice(_COMPOUND_SURNAMES)
    else:
        surname = rng.choices(_SURNAMES, weights=_SURNAME_WEIGHTS)[0]
    pool = _GIVEN[sex] + _GIVEN_EITHER
    given = rng.choice(_GIVEN[sex])
    if rng.random() < 0.7:
        given = rng.choice(pool) + given
    return surname + given


# Three-digit mobile prefixes of the three carriers and China Broadnet.
_MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "145",
    "147",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "173",
    "175",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "184",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "192",
    "193",
    "195",
    "196",
    "197",
    "198",
    "199",
)


def mobile_phone(rng: random.Random) -> str:
    """An 11-digit mainland mobile number."""
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"


def landline_phone(rng: random.Random, *, area_code: str = "0451") -> str:
    """A landline with its area code, e.g. 0451-86123456 (0451 is 哈尔滨)."""
    return f"{area_code}-{rng.choice('3568')}{rng.randint(0, 9_999_999):07d}"


def industry_code(rng: random.Random) -> str:
    """A division-level GB/T 4754-2017 code with its section letter, e.g. 'C39'."""
    division = rng.choice(sorted(DIVISIONS))
    return section_of(int(division)) + division
