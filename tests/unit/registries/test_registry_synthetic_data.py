"""Synthetic registry data: valid, unique where asked, and reproducible from a seed."""

import random
from datetime import date

import pytest

from sunflower.registries import synthetic
from sunflower.registries.identifiers import Sex, parse_id_number, parse_phone
from sunflower.registries.industry import parse_industry_code
from sunflower.registries.uscc import parse_credit_code

TODAY = date(2025, 6, 1)


def test_ten_thousand_identity_numbers_all_validate_and_are_distinct():
    numbers = synthetic.unique_id_numbers(random.Random(1), 10_000)
    assert len(numbers) == len(set(numbers)) == 10_000
    for value in numbers:
        parsed = parse_id_number(value, today=TODAY)
        assert parsed.value == value
        assert parsed.region_code == "230108"


def test_ten_thousand_credit_codes_all_validate_and_are_distinct():
    codes = synthetic.unique_credit_codes(random.Random(1), 10_000)
    assert len(codes) == len(set(codes)) == 10_000
    for value in codes:
        code = parse_credit_code(value)
        assert (code.authority, code.entity_type, code.region_code) == ("9", "1", "230108")


def test_both_organisation_code_styles_appear():
    codes = synthetic.unique_credit_codes(random.Random(3), 200)
    assert any(c[8:10] == "MA" for c in codes)
    assert any(c[8:17].isdigit() for c in codes)


def test_the_same_seed_gives_the_same_data():
    def draw(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [
            synthetic.id_number(rng),
            synthetic.credit_code(rng),
            synthetic.person_name(rng),
            synthetic.mobile_phone(rng),
            synthetic.landline_phone(rng),
            synthetic.industry_code(rng),
        ]

    assert draw(42) == draw(42)
    assert draw(42) != draw(43)


def test_id_number_respects_region_birth_date_and_sex():
    rng = random.Random(5)
    for sex in (Sex.MALE, Sex.FEMALE):
        for _ in range(200):
            value = synthetic.id_number(rng, region="110105", born=date(2000, 2, 29), sex=sex)
            parsed = parse_id_number(value, today=TODAY)
            assert (parsed.region_code, parsed.birth_date, parsed.sex) == (
                "110105",
                date(2000, 2, 29),
                sex,
            )
            assert value[14:17] != "000"


def test_both_sexes_and_a_spread_of_birth_years_are_drawn():
    rng = random.Random(9)
    parsed = [parse_id_number(synthetic.id_number(rng), today=TODAY) for _ in range(2000)]
    assert {p.sex for p in parsed} == {Sex.MALE, Sex.FEMALE}
    years = {p.birth_date.year for p in parsed}
    assert min(years) < 1950 and max(years) > 2010


def test_credit_code_for_other_authorities_and_a_national_registration():
    rng = random.Random(6)
    for authority, entity_type, region in [
        ("5", "1", "100000"),
        ("1", "2", "230108"),
        ("N", "2", "230108"),
        ("9", "2", "230103"),
    ]:
        code = parse_credit_code(
            synthetic.credit_code(rng, region=region, authority=authority, entity_type=entity_type)
        )
        assert (code.authority, code.entity_type, code.region_code) == (
            authority,
            entity_type,
            region,
        )


@pytest.mark.parametrize(
    "kwargs", [{"region": "371399"}, {"authority": "B"}, {"authority": "9", "entity_type": "9"}]
)
def test_credit_code_refuses_parameters_that_cannot_make_a_valid_code(kwargs):
    with pytest.raises(ValueError):
        synthetic.credit_code(random.Random(0), **kwargs)


def test_id_number_refuses_an_unknown_region():
    with pytest.raises(ValueError):
        synthetic.id_number(random.Random(0), region="371399")


def test_asking_for_more_distinct_numbers_than_exist_fails_instead_of_looping():
    # one birth date and one sex leave 499 sequence numbers
    rng = random.Random(0)
    assert (
        len(set(synthetic.unique_id_numbers(rng, 499, born=date(2000, 1, 1), sex=Sex.FEMALE)))
        == 499
    )
    with pytest.raises(ValueError):
        synthetic.unique_id_numbers(rng, 500, born=date(2000, 1, 1), sex=Sex.FEMALE)


def test_names_are_two_to_four_chinese_characters():
    rng = random.Random(8)
    names = [synthetic.person_name(rng) for _ in range(5000)]
    assert all(2 <= len(n) <= 4 for n in names)
    assert all("\u4e00" <= ch <= "\u9fff" for n in names for ch in n)
    assert len(set(names)) > 2000
    # the commonest surnames come first
    assert sum(n[0] == "王" for n in names) > sum(n[0] == "汤" for n in names)


def test_given_names_follow_the_requested_sex():
    rng = random.Random(4)
    male = [synthetic.person_name(rng, sex=Sex.MALE) for _ in range(500)]
    assert not any(n[-1] in "芳娜敏静秀丽艳娟" for n in male)


def test_phones_parse():
    rng = random.Random(10)
    for _ in range(2000):
        mobile = synthetic.mobile_phone(rng)
        assert parse_phone(mobile) == mobile
        landline = synthetic.landline_phone(rng)
        assert parse_phone(landline) == landline


def test_industry_codes_parse():
    rng = random.Random(12)
    for _ in range(500):
        code = synthetic.industry_code(rng)
        assert parse_industry_code(code).code == code
