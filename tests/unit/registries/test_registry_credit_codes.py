"""Unified social credit codes (GB 32100-2015): every rule, with real published codes."""

import random

import pytest
from stdnum.cn import uscc as stdnum_uscc

from sunflower.common.errors import FieldProblem, ValidationFailed
from sunflower.registries.uscc import (
    ALPHABET,
    AUTHORITIES,
    CreditCode,
    InvalidCreditCode,
    check_character,
    organisation_check_character,
    parse_credit_code,
)


def rejection(text: str) -> InvalidCreditCode:
    with pytest.raises(InvalidCreditCode) as caught:
        parse_credit_code(text)
    return caught.value


def make(prefix8: str, organisation8: str) -> str:
    """A code with both check characters computed, for building cases."""
    first17 = prefix8 + organisation8 + organisation_check_character(organisation8)
    return first17 + check_character(first17)


# --- check characters ----------------------------------------------------------------------


def test_alphabet_is_31_characters_without_i_o_z_s_v():
    assert len(ALPHABET) == 31
    assert set(ALPHABET) == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") - set("IOZSV")


def test_gb_32100_check_character():
    assert check_character("91110000600037341") == "L"
    assert check_character("12440600MB2C07549") == "J"
    assert check_character("0" * 17) == "0"  # 31 - 0 = 31 -> 0


def test_gb_32100_check_character_agrees_with_python_stdnum():
    rng = random.Random(32100)
    for _ in range(2000):
        first17 = "".join(rng.choice(ALPHABET) for _ in range(17))
        assert check_character(first17) == stdnum_uscc.calc_check_digit(first17)


def test_gb_11714_organisation_check_character_by_hand():
    # 6*3 + 0*7 + 0*9 + 0*10 + 3*5 + 7*8 + 3*4 + 4*2 = 109; 109 mod 11 = 10; 11 - 10 = 1
    assert organisation_check_character("60003734") == "1"
    # letters count 10-35: M=22, B=11, C=12 -> 66+77+18+120+0+56+20+8 = 365; 365 mod 11 = 2; 11 - 2 = 9
    assert organisation_check_character("MB2C0754") == "9"
    assert organisation_check_character("00000006") == "X"  # 12 mod 11 = 1 -> 10 -> X
    assert organisation_check_character("00000000") == "0"  # 0 -> 11 -> 0


@pytest.mark.parametrize("bad", ["", "1234567", "123456789", "abcdefgh", "１２３４５６７８"])
def test_organisation_check_character_needs_8_characters(bad):
    with pytest.raises(ValueError):
        organisation_check_character(bad)


@pytest.mark.parametrize("bad", ["", "9111000060003734", "91110000600037341L", "9111000060003734I"])
def test_check_character_needs_17_alphabet_characters(bad):
    with pytest.raises(ValueError):
        check_character(bad)


# --- valid codes ---------------------------------------------------------------------------


def test_a_published_enterprise_code_parses_into_its_parts():
    code = parse_credit_code("91110000600037341L")
    assert code == CreditCode(
        value="91110000600037341L",
        authority="9",
        entity_type="1",
        region_code="110000",
        organisation_code="600037341",
    )
    assert (code.authority_name, code.entity_type_name) == ("工商", "企业")
    assert code.region_name == "北京市"


def test_a_public_institution_code_with_letters_in_its_organisation_code():
    code = parse_credit_code("12440600MB2C07549J")  # a 佛山 public institution
    assert (code.authority_name, code.entity_type_name) == ("机构编制", "事业单位")
    assert code.organisation_code == "MB2C07549"
    assert code.region_name == "广东省 佛山市"


def test_lowercase_whitespace_and_full_width_are_normalised():
    assert parse_credit_code(" 91110000600037341l ").value == "91110000600037341L"
    assert (
        parse_credit_code("\u3000９１１１００００６０００３７３４１Ｌ").value
        == "91110000600037341L"
    )
    assert parse_credit_code("12440600mb2c07549j").value == "12440600MB2C07549J"


def test_national_registrations_use_region_100000():
    code = parse_credit_code(make("51100000", "50001099"))  # a national social organisation
    assert code.region_code == "100000"
    assert code.region_name == "全国"
    assert (code.authority_name, code.entity_type_name) == ("民政", "社会团体")


def test_lettered_authorities_are_accepted_although_python_stdnum_rejects_them():
    for prefix, names in [
        ("Y1230108", ("其他", "其他")),
        ("N2230108", ("农业", "村级集体经济组织")),
        ("A1110000", ("中央军委改革和编制办公室", "军队事业单位")),
    ]:
        value = make(prefix, "MA1CXR4T")
        code = parse_credit_code(value)
        assert (code.authority_name, code.entity_type_name) == names
        assert not stdnum_uscc.is_valid(value)  # stdnum wants digits in positions 1-8


def test_every_authority_and_entity_type_in_the_table_is_accepted():
    for authority, (_, types) in AUTHORITIES.items():
        for entity_type, name in types.items():
            code = parse_credit_code(make(f"{authority}{entity_type}230108", "12345678"))
            assert code.entity_type_name == name


def test_the_table_matches_gb_32100():
    assert {a: (name, sorted(types)) for a, (name, types) in AUTHORITIES.items()} == {
        "1": ("机构编制", ["1", "2", "3", "9"]),
        "2": ("外交", ["1", "9"]),
        "3": ("司法行政", ["1", "2", "3", "4", "5", "9"]),
        "4": ("文化", ["1", "9"]),
        "5": ("民政", ["1", "2", "3", "9"]),
        "6": ("旅游", ["1", "2", "9"]),
        "7": ("宗教", ["1", "2", "9"]),
        "8": ("工会", ["1", "9"]),
        "9": ("工商", ["1", "2", "3"]),
        "A": ("中央军委改革和编制办公室", ["1", "9"]),
        "N": ("农业", ["1", "2", "3", "9"]),
        "Y": ("其他", ["1"]),
    }


def test_historical_region_codes_are_accepted():
    assert parse_credit_code(make("91110103", "12345678")).region_name == "北京市 崇文区"


def test_an_organisation_code_ending_in_x_is_accepted():
    assert parse_credit_code(make("91230108", "00000006")).organisation_code == "00000006X"


def test_round_trip_over_random_codes():
    # a seeded property test (hypothesis is not installed)
    rng = random.Random(2015)
    pairs = [(a, t) for a, (_, types) in AUTHORITIES.items() for t in types]
    for _ in range(3000):
        authority, entity_type = rng.choice(pairs)
        region = rng.choice(["230108", "110000", "100000", "440600", "650102"])
        body = "".join(rng.choice(ALPHABET) for _ in range(8))
        value = make(f"{authority}{entity_type}{region}", body)
        code = parse_credit_code(value.lower())
        assert (code.value, code.authority, code.entity_type, code.region_code) == (
            value,
            authority,
            entity_type,
            region,
        )
        assert code.organisation_code[:8] == body


# --- failing rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("", 0),
        ("9111000060003734", 16),
        ("91110000600037341L0", 19),
        ("9111 0000 6000 3734 1L", 22),
    ],
)
def test_length_rule(text, length):
    error = rejection(text)
    assert error.rule == "length"
    assert error.problems == (FieldProblem("creditCode", f"must be 18 characters, not {length}"),)


@pytest.mark.parametrize(
    ("letter", "position"), [("I", 12), ("O", 9), ("Z", 17), ("S", 18), ("V", 3)]
)
def test_characters_rule_names_each_excluded_letter(letter, position):
    value = "91110000600037341L"
    error = rejection(value[: position - 1] + letter + value[position:])
    assert error.rule == "characters"
    assert error.problems[0].message == (
        f"character {position} is {letter!r}; a credit code uses only 0-9 and A-Z without I, O, Z, S, V"
    )


def test_characters_rule_for_a_lowercase_excluded_letter_and_chinese():
    assert rejection("91110000600037341o").rule == "characters"
    error = rejection("9111000060003734号L")
    assert error.problems[0].message.startswith("character 17 is '号'")


@pytest.mark.parametrize("authority", ["0", "B", "C", "M", "X"])
def test_authority_rule(authority):
    error = rejection(make(f"{authority}1110000", "60003734"))
    assert error.rule == "authority"
    assert error.problems[0].message == (
        f"registration authority {authority} is not in GB 32100 (1, 2, 3, 4, 5, 6, 7, 8, 9, A, N, Y)"
    )


def test_entity_type_rule_lists_what_the_authority_registers():
    error = rejection(make("94110000", "60003734"))
    assert error.rule == "entity_type"
    assert error.problems[0].message == (
        "entity type 4 is not defined for registration authority 9 工商 "
        "(allowed: 1 企业, 2 个体工商户, 3 农民专业合作社)"
    )


@pytest.mark.parametrize(
    "prefix", ["99110000", "Y2110000", "10110000", "1A110000", "54110000", "84110000"]
)
def test_entity_type_rule_for_other_authorities(prefix):
    assert rejection(make(prefix, "60003734")).rule == "entity_type"


def test_region_rule_for_an_unknown_code():
    error = rejection(make("91371399", "60003734"))
    assert error.rule == "region"
    assert error.problems[0].message == "371399 is not an administrative region code (GB/T 2260)"


def test_region_rule_for_letters_in_the_region():
    error = rejection(make("9111A000", "60003734"))
    assert error.rule == "region"
    assert error.problems[0].message == "region code 11A000 must be 6 digits (GB/T 2260)"


def test_organisation_code_rule():
    value = "91110000600037342L"  # the organisation code's own check character mistyped
    error = rejection(value)
    assert error.rule == "organisation_code"
    assert (
        error.problems[0].message == "organisation code 600037342 should end in 1, not 2 (GB 11714)"
    )
    # python-stdnum does not check the organisation code at all: fix only the 18th character
    fixed = value[:17] + check_character(value[:17])
    assert stdnum_uscc.is_valid(fixed)
    assert rejection(fixed).rule == "organisation_code"


def test_check_character_rule():
    error = rejection("91110000600037341M")
    assert error.rule == "check_character"
    assert error.problems[0].message == "check character should be L, not M (GB 32100)"


def test_some_real_xiamen_codes_from_before_2016_fail_the_check_character():
    # known non-conforming codes in the national register; rejected like every GB 32100 validator does
    error = rejection("91350203M0001QKT19")
    assert (error.rule, error.problems[0].message) == (
        "check_character",
        "check character should be F, not 9 (GB 32100)",
    )


def test_the_error_is_a_validation_failure_on_field_credit_code():
    error = rejection("91110000600037341M")
    assert isinstance(error, ValidationFailed)
    assert error.code == "VALIDATION_FAILED"
    assert str(error) == "creditCode: check character should be L, not M (GB 32100)"


def test_the_field_name_can_be_chosen():
    with pytest.raises(InvalidCreditCode) as caught:
        parse_credit_code("x", field="employerCreditCode")
    assert caught.value.problems[0].field == "employerCreditCode"
