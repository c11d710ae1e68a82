"""Mainland phone numbers: mobiles and landlines with area codes, normalised."""

import pytest

from sunflower.common.errors import FieldProblem, ValidationFailed
from sunflower.registries.identifiers import parse_phone

HELP = (
    "must be a mainland mobile number (11 digits starting 13-19) "
    "or a landline with its area code, such as 0451-86123456"
)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("0086 13812345678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("＋８６　１３８１２３４５６７８", "13812345678"),
        ("  19912345678 ", "19912345678"),
        ("16612345678", "16612345678"),
    ],
)
def test_mobile_numbers(text, normalised):
    assert parse_phone(text) == normalised


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("0451-86123456", "0451-86123456"),  # 哈尔滨
        ("045186123456", "0451-86123456"),
        ("(0451) 8612 3456", "0451-86123456"),
        ("0451 8612 3456", "0451-86123456"),
        ("010-62345678", "010-62345678"),  # 北京: three-digit area code
        ("01062345678", "010-62345678"),
        ("021 5123 4567", "021-51234567"),  # 上海
        ("0453-6123456", "0453-6123456"),  # a seven-digit local number
        ("+86 451 8612 3456", "0451-86123456"),  # international form drops the trunk 0
        ("0086-10-62345678", "010-62345678"),
        ("０４５１－８６１２３４５６", "0451-86123456"),
    ],
)
def test_landlines_with_area_codes(text, normalised):
    assert parse_phone(text) == normalised


@pytest.mark.parametrize(
    "text",
    [
        "12345678901",  # 12x is not a mobile prefix
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "11012345678",
        "0451-861",  # local number too short
        "04518612345678",  # too long
        "8613812345678",  # 86 without + or 00 is not a country prefix
    ],
)
def test_wrong_shapes_are_rejected(text):
    with pytest.raises(ValidationFailed) as caught:
        parse_phone(text)
    assert caught.value.problems[0].field == "phone"
    assert caught.value.problems[0].message.startswith(HELP)


def test_a_landline_without_its_area_code_says_so():
    with pytest.raises(ValidationFailed) as caught:
        parse_phone("8612 3456")
    assert caught.value.problems == (FieldProblem("phone", f"{HELP}; the area code is missing"),)


def test_a_local_number_starting_0_or_1_is_rejected_with_the_area_code_named():
    with pytest.raises(ValidationFailed) as caught:
        parse_phone("0451-16123456")
    assert caught.value.problems[0].message == (
        f"{HELP}; after area code 0451 the local number must be 7 or 8 digits not starting 0 or 1"
    )


@pytest.mark.parametrize(
    "text", ["", "   ", "138-1234-567a", "电话13812345678", "138.1234.5678", "+1 415 555 0100"]
)
def test_other_characters_are_rejected(text):
    with pytest.raises(ValidationFailed) as caught:
        parse_phone(text)
    assert caught.value.problems[0].field == "phone"


def test_the_field_name_can_be_chosen():
    with pytest.raises(ValidationFailed) as caught:
        parse_phone("123", field="contactPhone")
    assert str(caught.value).startswith("contactPhone: ")
