"""Resident identity card numbers (GB 11643-1999): every rule, with published examples."""

import random
from datetime import date

import pytest
from stdnum.cn import ric

from sunflower.common.errors import FieldProblem, ValidationFailed
from sunflower.registries.identifiers import (
    IdNumber,
    InvalidIdNumber,
    Sex,
    check_character,
    is_region_code,
    normalise,
    parse_id_number,
    region_name,
)

TODAY = date(2025, 6, 1)


def parse(text: str, today: date = TODAY) -> IdNumber:
    return parse_id_number(text, today=today)


def rejection(text: str, today: date = TODAY) -> InvalidIdNumber:
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(text, today=today)
    return caught.value


# --- check character -----------------------------------------------------------------------


def test_check_character_of_the_standards_example_is_x():
    assert check_character("11010519491231002") == "X"


@pytest.mark.parametrize(
    ("first17", "expected"),
    [
        ("44052418800101001", "4"),  # GB 11643-1999's second example: 440524188001010014
        ("36042619910101007", "1"),  # python-stdnum's doctest: 360426199101010071
        ("13050319670401001", "6"),
        ("00000000000000000", "1"),  # sum 0 -> map[0] = 1
    ],
)
def test_check_character_follows_iso_7064_mod_11_2(first17, expected):
    assert check_character(first17) == expected


def test_check_character_weights_and_map_by_hand():
    # given a single 1 in each position, the sum is that position's weight
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    for position, weight in enumerate(weights):
        first17 = "0" * position + "1" + "0" * (16 - position)
        assert check_character(first17) == "10X98765432"[weight % 11], position


def test_check_character_agrees_with_python_stdnum_which_wants_the_check_position_included():
    # python-stdnum's calc_check_digit ignores the last character it is given: pass 18, not 17
    rng = random.Random(11643)
    for _ in range(2000):
        first17 = "".join(rng.choice("0123456789") for _ in range(17))
        assert check_character(first17) == ric.calc_check_digit(first17 + "?")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "1101051949123100",
        "110105194912310021",
        "1101051949123100X",
        "１１０１０５１９４９１２３１００２",
    ],
)
def test_check_character_needs_exactly_17_ascii_digits(bad):
    with pytest.raises(ValueError):
        check_character(bad)


# --- valid numbers -------------------------------------------------------------------------


def test_the_standards_example_parses_into_region_birth_date_and_sex():
    number = parse("11010519491231002X")
    assert number.value == "11010519491231002X"
    assert number.region_code == "110105"
    assert number.birth_date == date(1949, 12, 31)
    assert number.sex is Sex.FEMALE  # sequence 002 is even
    assert number.masked == "110105********002X"
    assert number.region_name == "北京市 朝阳区"


def test_an_odd_sequence_digit_is_male():
    number = parse("440524188001010014")  # GB 11643-1999's example of a man born 1880
    assert number.sex is Sex.MALE
    assert number.birth_date == date(1880, 1, 1)


def test_masked_is_first_six_eight_stars_last_four():
    number = parse(
        "230108199001011234".replace("1234", "123" + check_character("23010819900101123"))
    )
    assert number.masked == number.value[:6] + "*" * 8 + number.value[-4:]
    assert len(number.masked) == 18


def test_repr_and_str_never_show_the_full_number():
    number = parse("11010519491231002X")
    assert "19491231" not in repr(number)
    assert "19491231" not in str(number)
    assert repr(number) == "IdNumber(110105********002X)"


def test_lowercase_x_is_accepted_and_stored_upper_case():
    assert parse("11010519491231002x").value == "11010519491231002X"


def test_surrounding_whitespace_is_trimmed():
    assert parse("  11010519491231002X\t\n").value == "11010519491231002X"


def test_full_width_digits_x_and_ideographic_spaces_from_office_spreadsheets_are_accepted():
    assert parse("\u3000１１０１０５１９４９１２３１００２Ｘ\u3000").value == "11010519491231002X"
    assert parse("１１０１０５１９４９１２３１００２ｘ").value == "11010519491231002X"


def test_zero_width_marks_from_copy_and_paste_are_dropped():
    assert parse("\ufeff11010519491231002X\u200b").value == "11010519491231002X"


def test_a_15_digit_first_generation_number_becomes_18_with_19_and_a_check_character():
    number = parse("130503670401001")
    assert number.value == "130503196704010016"
    assert number.birth_date == date(1967, 4, 1)
    assert number.sex is Sex.MALE
    assert number.region_code == "130503"
    # and the converted number is itself valid
    assert parse(number.value) == number


def test_people_born_before_their_codes_first_recorded_year_are_accepted_although_python_stdnum_rejects_them():
    # loc.dat dates most codes from 1983, so stdnum.cn.ric rejects e.g. everyone from 230108
    # (this district) born before 1983, and the standard's own 15-digit example once converted
    for first17 in ("23010819600101001", "13050319670401001"):
        value = first17 + check_character(first17)
        assert parse(value).value == value
        assert not ric.is_valid(value)


def test_15_digit_number_in_full_width():
    assert parse("１３０５０３６７０４０１００１").value == "130503196704010016"


def test_born_today_is_not_in_the_future():
    first17 = "11010520250601001"
    assert parse(first17 + check_character(first17), today=date(2025, 6, 1)).birth_date == date(
        2025, 6, 1
    )


@pytest.mark.parametrize("born", ["20000229", "20040229", "19960229", "19840229"])
def test_29_february_of_a_leap_year_is_a_real_date(born):
    first17 = f"110105{born}001"
    assert parse(first17 + check_character(first17)).birth_date.day == 29


def test_historical_region_codes_stay_valid():
    # 110103 崇文区 was merged into 东城区 in 2010; its people kept their numbers
    first17 = "11010319800101001"
    number = parse(first17 + check_character(first17))
    assert number.region_name == "北京市 崇文区"


def test_a_region_code_created_after_the_birth_year_is_accepted_although_python_stdnum_rejects_it():
    # 110115 大兴区 exists since 2001; someone born in 1980 can hold a 110115 number
    first17 = "11011519800101001"
    value = first17 + check_character(first17)
    assert parse(value).region_code == "110115"
    assert not ric.is_valid(value)  # stdnum checks the code against the birth year


def test_hong_kong_macao_and_taiwan_residence_permit_numbers_are_accepted():
    for region in ("810000", "820000", "830000"):
        first17 = f"{region}19900101001"
        assert parse(first17 + check_character(first17)).region_code == region


def test_region_name_of_a_number_uses_the_name_in_the_birth_year():
    first17 = "12011019800101001"  # 120110: 东郊区 until 1991, 东丽区 from 1992
    assert parse(first17 + check_character(first17)).region_name == "天津市 东郊区"
    first17 = "12011019950101001"
    assert parse(first17 + check_character(first17)).region_name == "天津市 东丽区"


def test_age_on_counts_completed_years():
    number = parse("11010519491231002X")
    assert number.age_on(date(2025, 12, 30)) == 75
    assert number.age_on(date(2025, 12, 31)) == 76
    leapling = parse("11010520000229001" + check_character("11010520000229001"))
    assert leapling.age_on(date(2001, 2, 28)) == 0
    assert leapling.age_on(date(2001, 3, 1)) == 1


def test_round_trip_over_many_regions_dates_and_sequences():
    # a seeded property test (hypothesis is not installed): build, parse, get the parts back
    rng = random.Random(20250601)
    regions = ["110105", "230108", "230103", "440524", "130503", "650102", "110103", "830000"]
    for _ in range(3000):
        region = rng.choice(regions)
        born = date.fromordinal(rng.randint(date(1900, 1, 1).toordinal(), TODAY.toordinal()))
        sequence = rng.randint(0, 999)
        first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
        number = parse(first17 + check_character(first17).lower())
        assert (number.region_code, number.birth_date) == (region, born)
        assert number.sex is (Sex.MALE if sequence % 2 else Sex.FEMALE)
        assert number.value == first17 + check_character(first17)


# --- failing rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1101051949123100", "must be 18 characters (or an old 15-digit number), not 16"),
        ("11010519491231002", "must be 18 characters (or an old 15-digit number), not 17"),
        ("11010519491231002X1", "must be 18 characters (or an old 15-digit number), not 19"),
        ("11010519491 231002X", "must be 18 characters (or an old 15-digit number), not 19"),
        ("", "is empty; must be 18 characters (or an old 15-digit number)"),
        ("   ", "is empty; must be 18 characters (or an old 15-digit number)"),
    ],
)
def test_length_rule(text, message):
    error = rejection(text)
    assert error.rule == "length"
    assert error.problems == (FieldProblem("idNumber", message),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "1101051949123100XX",
            "character 17 is 'X'; only digits are allowed, and X only as the 18th (check) character",
        ),
        (
            "11010A19491231002X",
            "character 6 is 'A'; only digits are allowed, and X only as the 18th (check) character",
        ),
        (
            "11010519491231002Y",
            "character 18 is 'Y'; only digits are allowed, and X only as the 18th (check) character",
        ),
        (
            "110105-9491231002X",
            "character 7 is '-'; only digits are allowed, and X only as the 18th (check) character",
        ),
        ("13050367040100X", "character 15 is 'X'; an old 15-digit number has only digits"),
        ("1305036704010０a", "character 15 is 'A'; an old 15-digit number has only digits"),
    ],
)
def test_characters_rule(text, message):
    error = rejection(text)
    assert error.rule == "characters"
    assert error.problems[0].message == message


def test_non_ascii_digits_are_not_taken_for_digits():
    # Arabic-Indic digits satisfy str.isdigit() but are not what an identity number contains
    error = rejection("١١٠١٠٥١٩٤٩١٢٣١٠٠٢X")
    assert error.rule == "characters"


@pytest.mark.parametrize(
    ("region", "text"),
    [
        ("371399", "37139919800101001"),
        ("999999", "99999919800101001"),
        ("000000", "00000019800101001"),
        ("230199", "23019919800101001"),
    ],
)
def test_region_rule(region, text):
    error = rejection(text + check_character(text))
    assert error.rule == "region"
    assert error.problems[0].message == f"{region} is not an administrative region code (GB/T 2260)"


def test_region_rule_applies_to_15_digit_numbers():
    error = rejection("371399670401001")
    assert (error.rule, error.problems[0].message) == (
        "region",
        "371399 is not an administrative region code (GB/T 2260)",
    )


@pytest.mark.parametrize(
    "born",
    [
        "19990231",
        "19990229",
        "19000229",
        "21000229",
        "19991301",
        "19990001",
        "19990100",
        "19990431",
        "00000101",
    ],
)
def test_birth_date_rule_for_dates_that_do_not_exist(born):
    # 1900 and 2100 are not leap years (divisible by 100, not by 400)
    first17 = f"110105{born}001"
    error = rejection(first17 + check_character(first17), today=date(2200, 1, 1))
    assert error.rule == "birth_date"
    assert error.problems[0].message == f"birth date {born} is not a real date"


def test_birth_date_rule_for_a_15_digit_number_shows_the_converted_date():
    error = rejection("110105990231001")
    assert (error.rule, error.problems[0].message) == (
        "birth_date",
        "birth date 19990231 is not a real date",
    )


def test_15_digit_numbers_are_19xx_so_29_february_1900_is_not_a_date():
    assert rejection("110105000229001").rule == "birth_date"
    assert parse("110105960229001").birth_date == date(1996, 2, 29)


def test_birth_date_rule_for_implausibly_early_years():
    first17 = "11010501000101001"
    error = rejection(first17 + check_character(first17))
    assert (error.rule, error.problems[0].message) == (
        "birth_date",
        "birth date 0100-01-01 is before 1850",
    )


def test_future_birth_date_rule_uses_the_injected_today():
    first17 = "11010520300101001"
    value = first17 + check_character(first17)
    error = rejection(value, today=date(2029, 12, 31))
    assert error.rule == "future_birth_date"
    assert error.problems[0].message == "birth date 2030-01-01 is in the future"
    # and the same number is fine once that day has come
    assert parse(value, today=date(2030, 1, 1)).birth_date == date(2030, 1, 1)


def test_born_tomorrow_is_in_the_future():
    first17 = "11010520250602001"
    error = rejection(first17 + check_character(first17), today=date(2025, 6, 1))
    assert error.problems[0].message == "birth date 2025-06-02 is in the future"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("110105194912310023", "check character should be X, not 3 (ISO 7064 MOD 11-2)"),
        ("11010519491231002０", "check character should be X, not 0 (ISO 7064 MOD 11-2)"),
        ("44052418800101001X", "check character should be 4, not X (ISO 7064 MOD 11-2)"),
        ("110105194912310012", "check character should be 1, not 2 (ISO 7064 MOD 11-2)"),
    ],
)
def test_check_character_rule(text, message):
    error = rejection(text)
    assert error.rule == "check_character"
    assert error.problems[0].message == message


def test_every_single_digit_typo_in_a_valid_number_is_caught():
    value = "11010519491231002X"
    for position in range(17):
        for digit in "0123456789":
            if digit == value[position]:
                continue
            typo = value[:position] + digit + value[position + 1 :]
            with pytest.raises(InvalidIdNumber):
                parse(typo)


def test_rules_are_reported_in_order_region_before_date_before_check_character():
    # all three are wrong: the region is reported
    assert rejection("371399199902310000").rule == "region"
    # date and check character wrong: the date is reported
    assert rejection("110105199902310000").rule == "birth_date"


def test_the_error_is_a_validation_failure_on_field_id_number():
    error = rejection("110105194912310023")
    assert isinstance(error, ValidationFailed)
    assert error.code == "VALIDATION_FAILED"
    assert str(error) == "idNumber: check character should be X, not 3 (ISO 7064 MOD 11-2)"
    assert error.message == str(error)
    assert error.problems == (
        FieldProblem("idNumber", "check character should be X, not 3 (ISO 7064 MOD 11-2)"),
    )


def test_the_field_name_can_be_chosen_for_forms_with_several_numbers():
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number("123", today=TODAY, field="spouseIdNumber")
    assert caught.value.problems[0].field == "spouseIdNumber"
    assert str(caught.value).startswith("spouseIdNumber: ")


def test_error_messages_never_contain_the_whole_number():
    for bad in ["110105194912310023", "371399199001011234", "110105199902310000"]:
        assert bad not in str(rejection(bad))


# --- regions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("230108", "黑龙江省 哈尔滨市 平房区"),
        ("230100", "黑龙江省 哈尔滨市"),
        ("230000", "黑龙江省"),
        ("110105", "北京市 朝阳区"),  # the 市辖区 placeholder is left out
        ("469001", "海南省 五指山市"),  # so is 省直辖县级行政区划
        ("810000", "香港特别行政区"),
        ("120110", "天津市 东丽区"),  # the latest name by default
    ],
)
def test_region_name(code, name):
    assert region_name(code) == name


def test_region_name_in_a_given_year():
    assert region_name("120110", year=1985) == "天津市 东郊区"
    assert region_name("120110", year=1992) == "天津市 东丽区"
    # before the code's first recorded name: the name it was first issued under
    assert region_name("130503", year=1967) == "河北省 邢台市 桥西区"
    assert region_name("130503") == "河北省 邢台市 信都区"


@pytest.mark.parametrize(
    "code", ["371399", "999999", "3713", "23010", "2301080", "", "abcdef", "２３０１０８"]
)
def test_region_name_of_something_that_is_not_a_code_is_none(code):
    assert region_name(code) is None
    assert not is_region_code(code)


def test_is_region_code_accepts_current_and_historical_codes():
    assert is_region_code("230108")
    assert is_region_code("110103")  # 崇文区, abolished 2010
    assert is_region_code("110000")
    assert not is_region_code("830000")  # residence permits only, not GB/T 2260


def test_normalise_turns_full_width_ascii_into_ascii():
    assert normalise("\u3000ＡＢＣ－１２３\u3000") == "ABC-123"
    assert normalise("汉字") == "汉字"
