"""GB/T 4754-2017 industry codes: sections, divisions and the accepted spellings."""

import pytest

from sunflower.common.errors import FieldProblem, ValidationFailed
from sunflower.registries.industry import (
    DIVISIONS,
    SECTIONS,
    IndustryCode,
    InvalidIndustryCode,
    parse_industry_code,
    section_of,
)

COMPUTERS = "计算机、通信和其他电子设备制造业"
HELP = "must be a section letter A-T and/or a 2-, 3- or 4-digit code (GB/T 4754-2017), such as C3911 or 3911"


def rejection(text: str) -> InvalidIndustryCode:
    with pytest.raises(InvalidIndustryCode) as caught:
        parse_industry_code(text)
    return caught.value


@pytest.mark.parametrize(
    ("text", "code", "level"),
    [
        ("C3911", "C3911", "class"),
        ("3911", "C3911", "class"),
        ("391", "C391", "group"),
        ("C391", "C391", "group"),
        ("39", "C39", "division"),
        ("C39", "C39", "division"),
        (" c3911 ", "C3911", "class"),
        ("Ｃ３９１１", "C3911", "class"),
    ],
)
def test_every_level_with_or_without_the_section_letter(text, code, level):
    parsed = parse_industry_code(text)
    assert parsed == IndustryCode(
        code=code, section="C", section_name="制造业", division="39", division_name=COMPUTERS
    )
    assert parsed.level == level


def test_a_section_on_its_own():
    parsed = parse_industry_code("C")
    assert parsed == IndustryCode(code="C", section="C", section_name="制造业", division=None)
    assert parsed.level == "section"


def test_twenty_sections_a_to_t_with_the_2017_division_ranges():
    assert list(SECTIONS) == list("ABCDEFGHIJKLMNOPQRST")
    assert {s: (first, last) for s, (_, first, last) in SECTIONS.items()} == {
        "A": (1, 5), "B": (6, 12), "C": (13, 43), "D": (44, 46), "E": (47, 50), "F": (51, 52),
        "G": (53, 60), "H": (61, 62), "I": (63, 65), "J": (66, 69), "K": (70, 70), "L": (71, 72),
        "M": (73, 75), "N": (76, 79), "O": (80, 82), "P": (83, 83), "Q": (84, 85), "R": (86, 90),
        "S": (91, 96), "T": (97, 97),
    }  # fmt: skip


def test_the_ranges_tile_divisions_01_to_97_without_gaps_or_overlaps():
    covered = [d for _, first, last in SECTIONS.values() for d in range(first, last + 1)]
    assert covered == list(range(1, 98))
    assert sorted(DIVISIONS) == [f"{d:02d}" for d in range(1, 98)]


@pytest.mark.parametrize(
    ("division", "section", "name"),
    [
        ("01", "A", "农业"),
        ("04", "A", "渔业"),
        ("05", "A", "农、林、牧、渔专业及辅助性活动"),
        ("06", "B", "煤炭开采和洗选业"),
        ("12", "B", "其他采矿业"),
        ("13", "C", "农副食品加工业"),
        ("42", "C", "废弃资源综合利用业"),
        ("43", "C", "金属制品、机械和设备修理业"),
        ("44", "D", "电力、热力生产和供应业"),
        ("50", "E", "建筑装饰、装修和其他建筑业"),
        ("65", "I", "软件和信息技术服务业"),
        ("70", "K", "房地产业"),
        ("79", "N", "土地管理业"),
        ("80", "O", "居民服务业"),
        ("83", "P", "教育"),
        ("92", "S", "国家机构"),
        ("96", "S", "基层群众自治组织及其他组织"),
        ("97", "T", "国际组织"),
    ],
)
def test_divisions_at_section_boundaries(division, section, name):
    parsed = parse_industry_code(division)
    assert (parsed.section, parsed.division_name) == (section, name)
    assert section_of(int(division)) == section


def test_every_division_parses_with_its_own_section_letter():
    for division in DIVISIONS:
        section = section_of(int(division))
        assert parse_industry_code(section + division + "11").code == section + division + "11"


@pytest.mark.parametrize(
    "text", ["", "   ", "3", "C3", "C39111", "39111", "39A", "C 39", "CC39", "3C9", "C-39", "汉字"]
)
def test_format_rule(text):
    error = rejection(text)
    assert error.rule == "format"
    assert error.problems == (FieldProblem("industryCode", HELP),)


@pytest.mark.parametrize("letter", ["U", "Z", "X"])
def test_section_rule_for_a_letter_past_t(letter):
    error = rejection(letter)
    assert (error.rule, error.problems[0].message) == (
        "section",
        f"section {letter} does not exist in GB/T 4754-2017 (sections run A-T)",
    )
    assert rejection(letter + "39").rule == "section"


def test_section_rule_when_the_letter_does_not_match_the_division():
    error = rejection("A3911")
    assert (error.rule, error.problems[0].message) == (
        "section",
        "3911 belongs to section C (制造业), not A",
    )
    assert (
        rejection("N80").problems[0].message
        == "80 belongs to section O (居民服务、修理和其他服务业), not N"
    )


@pytest.mark.parametrize("division", ["00", "98", "99"])
def test_division_rule(division):
    for text in (division, division + "1", division + "11", "C" + division):
        error = rejection(text)
        assert error.rule == "division"
        assert error.problems[0].message == (
            f"division {division} does not exist in GB/T 4754-2017 (divisions run 01-97)"
        )


def test_the_error_is_a_validation_failure_on_field_industry_code():
    error = rejection("98")
    assert isinstance(error, ValidationFailed)
    assert (
        str(error)
        == "industryCode: division 98 does not exist in GB/T 4754-2017 (divisions run 01-97)"
    )
