"""Unified social credit codes (统一社会信用代码, GB 32100-2015).

Layout: 1 registration authority, 2 entity type, 3-8 region (GB/T 2260; 100000 for national
registrations), 9-17 organisation code (GB 11714, its own check character last), 18 check
character. Every failure names its rule.

python-stdnum's `cn.uscc` checks only length, alphabet and the 18th character, and insists on
digits in positions 1-8, so it rejects the lettered authorities A, N and Y; hence this module.
Known real-world exception: some codes Xiamen issued before 2016 (e.g. 91350203M0001QKT19) carry
a wrong 18th character and are rejected here, as they are by every GB 32100 validator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sunflower.common.errors import FieldProblem, ValidationFailed
from sunflower.registries.identifiers import is_region_code, normalise, region_name

__all__ = [
    "AUTHORITIES",
    "CreditCode",
    "CreditRule",
    "InvalidCreditCode",
    "check_character",
    "organisation_check_character",
    "parse_credit_code",
]

CreditRule = Literal[
    "length",
    "characters",
    "authority",
    "entity_type",
    "region",
    "organisation_code",
    "check_character",
]

# 0-9 and A-Z without I, O, Z, S, V: 31 characters; a character's value is its index.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORGANISATION_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
NATIONAL_REGION = "100000"  # registrations by a central (national) authority

# GB 32100-2015 table of registration authorities and the entity types each registers, with the
# authorities A and N added by the 2016-2018 amendments (the published, widely reproduced table).
AUTHORITIES: dict[str, tuple[str, dict[str, str]]] = {
    "1": (
        "机构编制",
        {"1": "机关", "2": "事业单位", "3": "中央编办直接管理机构编制的群众团体", "9": "其他"},
    ),
    "2": ("外交", {"1": "外国常住新闻机构", "9": "其他"}),
    "3": (
        "司法行政",
        {
            "1": "律师执业机构",
            "2": "公证处",
            "3": "基层法律服务所",
            "4": "司法鉴定机构",
            "5": "仲裁委员会",
            "9": "其他",
        },
    ),
    "4": ("文化", {"1": "外国在华文化中心", "9": "其他"}),
    "5": ("民政", {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"}),
    "6": (
        "旅游",
        {
            "1": "外国旅游部门常驻代表机构",
            "2": "港澳台地区旅游部门常驻内地（大陆）代表机构",
            "9": "其他",
        },
    ),
    "7": ("宗教", {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"}),
    "8": ("工会", {"1": "基层工会", "9": "其他"}),
    "9": ("工商", {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"}),
    "A": ("中央军委改革和编制办公室", {"1": "军队事业单位", "9": "其他"}),
    "N": (
        "农业",
        {"1": "组级集体经济组织", "2": "村级集体经济组织", "3": "乡镇级集体经济组织", "9": "其他"},
    ),
    "Y": ("其他", {"1": "其他"}),  # the standard does not subdivide; always 1
}


class InvalidCreditCode(ValidationFailed):
    """A credit code that breaks `rule`; the message says how."""

    def __init__(self, rule: CreditRule, message: str, *, field: str = "creditCode") -> None:
        super().__init__(f"{field}: {message}", problems=(FieldProblem(field, message),))
        self.rule = rule


@dataclass(frozen=True)
class CreditCode:
    value: str
    authority: str  # registration authority (登记管理部门), character 1
    entity_type: str  # entity type (机构类别), character 2
    region_code: str  # characters 3-8
    organisation_code: str  # characters 9-17 (主体标识码 / 组织机构代码)

    @property
    def authority_name(self) -> str:
        return AUTHORITIES[self.authority][0]

    @property
    def entity_type_name(self) -> str:
        return AUTHORITIES[self.authority][1][self.entity_type]

    @property
    def region_name(self) -> str | None:
        return "全国" if self.region_code == NATIONAL_REGION else region_name(self.region_code)


def check_character(first17: str) -> str:
    """GB 32100 check character (18th) for the first 17 characters of a credit code."""
    if len(first17) != 17 or any(c not in ALPHABET for c in first17):
        raise ValueError(f"check_character needs 17 characters of {ALPHABET}")
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def organisation_check_character(first8: str) -> str:
    """GB 11714 check character for the first 8 characters of an organisation code."""
    if (
        len(first8) != 8
        or not first8.isascii()
        or not first8.isalnum()
        or not first8.upper() == first8
    ):
        raise ValueError("organisation_check_character needs 8 digits or upper-case letters")
    remainder = (
        11 - sum(int(c, 36) * w for c, w in zip(first8, _ORGANISATION_WEIGHTS, strict=True)) % 11
    )
    return {10: "X", 11: "0"}.get(remainder, str(remainder))


def parse_credit_code(text: str, *, field: str = "creditCode") -> CreditCode:
    """Validate a unified social credit code; raise `InvalidCreditCode` naming the broken rule."""

    def fail(rule: CreditRule, message: str) -> InvalidCreditCode:
        return InvalidCreditCode(rule, message, field=field)

    value = normalise(text).upper()
    if len(value) != 18:
        raise fail("length", f"must be 18 characters, not {len(value)}")
    for position, char in enumerate(value, start=1):
        if char not in ALPHABET:
            raise fail(
                "characters",
                f"character {position} is {char!r}; a credit code uses only 0-9 and A-Z without I, O, Z, S, V",
            )

    authority, entity_type, region, organisation = value[0], value[1], value[2:8], value[8:17]
    if authority not in AUTHORITIES:
        raise fail(
            "authority",
            f"registration authority {authority} is not in GB 32100 ({', '.join(AUTHORITIES)})",
        )
    authority_name, types = AUTHORITIES[authority]
    if entity_type not in types:
        allowed = ", ".join(f"{code} {name}" for code, name in types.items())
        raise fail(
            "entity_type",
            f"entity type {entity_type} is not defined for registration authority {authority} {authority_name} "
            f"(allowed: {allowed})",
        )
    if not region.isdigit():
        raise fail("region", f"region code {region} must be 6 digits (GB/T 2260)")
    if region != NATIONAL_REGION and not is_region_code(region):
        raise fail("region", f"{region} is not an administrative region code (GB/T 2260)")

    expected_org = organisation_check_character(organisation[:8])
    if organisation[8] != expected_org:
        raise fail(
            "organisation_code",
            f"organisation code {organisation} should end in {expected_org}, not {organisation[8]} (GB 11714)",
        )
    expected = check_character(value[:17])
    if value[17] != expected:
        raise fail(
            "check_character", f"check character should be {expected}, not {value[17]} (GB 32100)"
        )

    return CreditCode(
        value=value,
        authority=authority,
        entity_type=entity_type,
        region_code=region,
        organisation_code=organisation,
    )
