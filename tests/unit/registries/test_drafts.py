"""Drafts: what clerks type or upload becomes a validated record, or every problem of it, by field."""

from datetime import date
from decimal import Decimal

import pytest
from factories import credit_row, entity_row, new_credit_code, new_id_number, person_row

from sunflower.common.errors import ValidationFailed
from sunflower.registries.drafts import credit_draft, entity_draft, parse_date, person_draft
from sunflower.registries.identifiers import Sex
from sunflower.registries.models import (
    CreditCategory,
    EntityStatus,
    PersonStatus,
    Relationship,
    SubjectType,
)

TODAY = date(2026, 3, 15)
BORN = date(1984, 7, 9)
MAN = new_id_number(born=BORN, sex=Sex.MALE)
WOMAN = new_id_number(born=BORN, sex=Sex.FEMALE)


def problems_of(build, fields, today: date = TODAY) -> dict[str, list[str]]:
    """Every problem the draft reports, keyed by field name."""
    with pytest.raises(ValidationFailed) as caught:
        build(fields, today=today)
    found: dict[str, list[str]] = {}
    for problem in caught.value.problems:
        found.setdefault(problem.field, []).append(problem.message)
    return found


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["2026-03-01", "2026/03/01", "20260301", "2026年3月1日", "2026.03.01", "2026-3-1", " 2026/3/1 "],
)
def test_dates_in_the_usual_office_forms_are_read(text):
    # given a date as offices write it / when parsed / then it is 1 March 2026
    assert parse_date(text) == date(2026, 3, 1)


@pytest.mark.parametrize("text", ["2026-02-30", "2026-13-01", "三月一日", "2026-03", "20261", "2026-03-01-05"])
def test_text_that_is_not_a_whole_date_is_refused(text):
    with pytest.raises(ValidationFailed) as caught:
        parse_date(text)
    assert "is not a date" in caught.value.message


# --- persons -------------------------------------------------------------------------------------


def test_a_complete_person_row_becomes_a_draft():
    # given a row with every field in Chinese words
    row = person_row(
        name="王建国",
        id_number=MAN,
        sex="男",
        birth_date="1984年7月9日",
        phone="138 1234 5678",
        status="常住",
        household_no="230108-0001",
        relationship="户主",
    )
    # when validated
    draft = person_draft(row, today=TODAY)
    # then the values are canonical
    assert draft.name == "王建国"
    assert draft.id_number.value == MAN
    assert draft.phone == "13812345678"
    assert draft.status is PersonStatus.RESIDENT
    assert draft.relationship is Relationship.HEAD
    assert draft.household_no == "230108-0001"
    assert draft.current_address.community_id == "pf-youxie-xingfu"
    assert draft.current_address.room == "501"
    assert draft.registered_address.detail == "友协大街101号"


def test_a_person_needs_only_name_and_id_number():
    draft = person_draft({"name": "赵敏", "id_number": WOMAN}, today=TODAY)
    assert draft.status is PersonStatus.RESIDENT
    assert draft.phone is None and draft.registered_address is None and draft.current_address is None
    assert draft.relationship is None and draft.household_no is None


def test_empty_text_counts_as_not_given():
    draft = person_draft({"name": "赵敏", "id_number": WOMAN, "phone": "  ", "current_community_id": ""}, today=TODAY)
    assert draft.phone is None and draft.current_address is None


def test_a_lower_case_check_character_and_full_width_digits_are_normalised():
    number = next(n for n in (new_id_number() for _ in range(200)) if n.endswith("X"))
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in number[:-1]) + "x"
    assert person_draft({"name": "赵敏", "id_number": full_width}, today=TODAY).id_number.value == number


def test_an_old_15_digit_number_becomes_the_18_character_one():
    old = MAN[:6] + MAN[8:17]  # 2-digit year, no check character
    assert person_draft({"name": "王建国", "id_number": old}, today=TODAY).id_number.value == MAN


@pytest.mark.parametrize("missing", ["name", "id_number"])
def test_name_and_id_number_are_required(missing):
    row = {"name": "赵敏", "id_number": WOMAN, missing: ""}
    assert problems_of(person_draft, row) == {missing: ["is required"]}


def test_a_name_longer_than_100_characters_is_refused():
    assert "name" in problems_of(person_draft, {"name": "王" * 101, "id_number": WOMAN})
    assert person_draft({"name": "王" * 100, "id_number": WOMAN}, today=TODAY).name == "王" * 100


@pytest.mark.parametrize("name", ["赵<b>敏</b>", "赵\t敏", "赵\n敏"])
def test_a_name_with_markup_or_control_characters_is_refused(name):
    assert problems_of(person_draft, {"name": name, "id_number": WOMAN}) == {
        "name": ["contains control or markup characters"]
    }


def test_a_wrong_check_character_names_the_id_number_field():
    wrong = MAN[:17] + ("0" if MAN[17] != "0" else "1")
    found = problems_of(person_draft, {"name": "王建国", "id_number": wrong})
    assert list(found) == ["id_number"]
    assert "check character" in found["id_number"][0]


def test_a_birth_date_in_the_future_is_refused():
    unborn = new_id_number(born=date(2026, 6, 1))
    assert "in the future" in problems_of(person_draft, {"name": "王小", "id_number": unborn})["id_number"][0]


@pytest.mark.parametrize("word, sex", [("男", Sex.MALE), ("male", Sex.MALE), ("M", Sex.MALE), ("Male", Sex.MALE)])
def test_sex_in_chinese_or_english_agreeing_with_the_id_number_is_accepted(word, sex):
    assert person_draft({"name": "王建国", "id_number": MAN, "sex": word}, today=TODAY).id_number.sex is sex


def test_sex_disagreeing_with_the_id_number_is_refused():
    found = problems_of(person_draft, {"name": "王建国", "id_number": MAN, "sex": "女"})
    assert found == {"sex": ["is female but the id number says male"]}


def test_an_unknown_sex_word_is_refused_naming_the_allowed_words():
    found = problems_of(person_draft, {"name": "王建国", "id_number": MAN, "sex": "未知"})
    assert "is not a sex" in found["sex"][0] and "male" in found["sex"][0]


@pytest.mark.parametrize("text", ["1984-07-09", "1984/07/09", "19840709", "1984年7月9日"])
def test_a_birth_date_agreeing_with_the_id_number_is_accepted_in_any_form(text):
    assert person_draft({"name": "王建国", "id_number": MAN, "birth_date": text}, today=TODAY).id_number.birth_date == BORN


def test_a_birth_date_disagreeing_with_the_id_number_is_refused():
    found = problems_of(person_draft, {"name": "王建国", "id_number": MAN, "birth_date": "1984-07-10"})
    assert found == {"birth_date": ["is 1984-07-10 but the id number says 1984-07-09"]}


def test_an_unreadable_birth_date_is_refused():
    assert "is not a date" in problems_of(person_draft, {"name": "王建国", "id_number": MAN, "birth_date": "七月"})[
        "birth_date"
    ][0]


def test_an_invalid_phone_is_refused():
    assert "phone" in problems_of(person_draft, {"name": "王建国", "id_number": MAN, "phone": "12345"})


@pytest.mark.parametrize(
    "word, status",
    [("常住", PersonStatus.RESIDENT), ("在册", PersonStatus.RESIDENT), ("迁出", PersonStatus.MOVED_OUT),
     ("死亡", PersonStatus.DECEASED), ("moved_out", PersonStatus.MOVED_OUT), ("DECEASED", PersonStatus.DECEASED)],
)
def test_status_words_in_chinese_or_english(word, status):
    assert person_draft({"name": "王建国", "id_number": MAN, "status": word}, today=TODAY).status is status


def test_merged_is_not_a_status_anyone_may_type():
    assert "status" in problems_of(person_draft, {"name": "王建国", "id_number": MAN, "status": "merged"})


@pytest.mark.parametrize(
    "word, relationship",
    [("户主", Relationship.HEAD), ("本人", Relationship.HEAD), ("配偶", Relationship.SPOUSE), ("妻", Relationship.SPOUSE),
     ("长子", Relationship.CHILD), ("女", Relationship.CHILD), ("母亲", Relationship.PARENT),
     ("孙女", Relationship.GRANDCHILD), ("祖父", Relationship.GRANDPARENT), ("姐妹", Relationship.SIBLING),
     ("其他", Relationship.OTHER), ("spouse", Relationship.SPOUSE)],
)
def test_relationship_words_in_chinese_or_english(word, relationship):
    fields = {"name": "王建国", "id_number": MAN, "household_no": "H1", "relationship": word}
    assert person_draft(fields, today=TODAY).relationship is relationship


def test_an_unknown_relationship_is_refused():
    found = problems_of(person_draft, {"name": "王建国", "id_number": MAN, "household_no": "H1", "relationship": "邻居"})
    assert list(found) == ["relationship"]


def test_a_relationship_without_a_household_number_is_refused():
    found = problems_of(person_draft, {"name": "王建国", "id_number": MAN, "relationship": "户主"})
    assert found == {"household_no": ["is required when a relationship to the head is given"]}


def test_a_household_number_longer_than_40_characters_is_refused():
    assert "household_no" in problems_of(person_draft, {"name": "王建国", "id_number": MAN, "household_no": "1" * 41})


def test_an_address_part_longer_than_200_characters_is_refused():
    found = problems_of(person_draft, {"name": "王建国", "id_number": MAN, "current_detail": "路" * 201})
    assert found == {"current_detail": ["is longer than 200 characters"]}


def test_every_problem_of_one_person_is_reported_with_its_field():
    # given a row wrong in five places
    row = {
        "name": "",
        "id_number": MAN,
        "sex": "女",
        "birth_date": "1990-01-01",
        "phone": "not a phone",
        "status": "unknown",
        "relationship": "户主",
    }
    # when validated / then each is reported against its field, and the message names them all
    with pytest.raises(ValidationFailed) as caught:
        person_draft(row, today=TODAY)
    fields = [p.field for p in caught.value.problems]
    assert sorted(fields) == sorted(["name", "sex", "birth_date", "phone", "status", "household_no"])
    for field in fields:
        assert f"{field}:" in caught.value.message


# --- legal entities ------------------------------------------------------------------------------


def test_a_complete_entity_row_becomes_a_draft():
    row = entity_row(MAN, registered_capital="1,200.5万元", status="存续", established_on="2018年5月20日")
    draft = entity_draft(row, today=TODAY)
    assert draft.credit_code == row["credit_code"]
    assert draft.legal_rep_id_number == MAN
    assert draft.registered_capital == Decimal("1200.5")
    assert draft.industry_code == "I65"
    assert draft.established_on == date(2018, 5, 20)
    assert draft.status is EntityStatus.ACTIVE
    assert draft.address.detail == "哈南工业新城1号"


def test_the_credit_code_is_upper_cased():
    code = new_credit_code()
    assert entity_draft(entity_row(MAN, credit_code=code.lower()), today=TODAY).credit_code == code


@pytest.mark.parametrize(
    "word, status",
    [("存续", EntityStatus.ACTIVE), ("在业", EntityStatus.ACTIVE), ("吊销", EntityStatus.REVOKED),
     ("注销", EntityStatus.CANCELLED), ("revoked", EntityStatus.REVOKED)],
)
def test_entity_status_words(word, status):
    assert entity_draft(entity_row(MAN, status=word), today=TODAY).status is status


@pytest.mark.parametrize("missing", ["name", "credit_code", "legal_rep_id_number"])
def test_name_credit_code_and_legal_representative_are_required(missing):
    assert problems_of(entity_draft, entity_row(MAN, **{missing: ""})) == {missing: ["is required"]}


@pytest.mark.parametrize(
    "field, value",
    [
        ("credit_code", "91230108MA1234567"),
        ("legal_rep_id_number", "230108198407091234X"),
        ("industry_code", "Z99"),
        ("established_on", "2026-04-01"),
        ("established_on", "someday"),
        ("registered_capital", "-5"),
        ("registered_capital", "五百万"),
        ("registered_capital", "NaN"),
        ("registered_capital", "Infinity"),
        ("status", "破产"),
        ("entity_type", "有" * 61),
    ],
)
def test_each_entity_field_rule(field, value):
    assert list(problems_of(entity_draft, entity_row(MAN, **{field: value}))) == [field]


def test_every_problem_of_one_entity_is_reported_with_its_field():
    row = entity_row("123", name="", credit_code="ABC", registered_capital="-1", established_on="2030-01-01")
    found = problems_of(entity_draft, row)
    assert set(found) == {"name", "credit_code", "legal_rep_id_number", "registered_capital", "established_on"}


# --- credit records ------------------------------------------------------------------------------


def test_a_subject_given_by_id_number_is_a_person():
    draft = credit_draft(credit_row(MAN.lower(), "行政处罚"), today=TODAY)
    assert (draft.subject_type, draft.subject_key) == (SubjectType.PERSON, MAN)
    assert draft.category is CreditCategory.ADMINISTRATIVE_PENALTY


def test_a_subject_given_by_credit_code_is_an_entity():
    code = new_credit_code()
    draft = credit_draft(credit_row(code, "红名单"), today=TODAY)
    assert (draft.subject_type, draft.subject_key) == (SubjectType.ENTITY, code)


def test_a_subject_that_is_neither_is_refused_saying_why_for_both():
    message = problems_of(credit_draft, credit_row("12345", "表彰"))["subject"][0]
    assert "neither an id number" in message and "nor a credit code" in message


@pytest.mark.parametrize(
    "word, category",
    [("表彰", CreditCategory.COMMENDATION), ("行政许可", CreditCategory.ADMINISTRATIVE_LICENCE),
     ("失信被执行人", CreditCategory.DISHONEST_JUDGMENT_DEBTOR), ("严重失信", CreditCategory.SERIOUS_DISHONESTY_LIST),
     ("严重失信主体名单", CreditCategory.SERIOUS_DISHONESTY_LIST), ("守信激励", CreditCategory.RED_LIST),
     ("守合同重信用", CreditCategory.CONTRACT_COMPLIANCE), ("纳税信用A级", CreditCategory.TAX_CREDIT_A),
     ("欠缴", CreditCategory.ARREARS), ("投诉", CreditCategory.COMPLAINT), ("complaint", CreditCategory.COMPLAINT)],
)
def test_category_words_in_chinese_or_english(word, category):
    assert credit_draft(credit_row(MAN, word), today=TODAY).category is category


def test_dates_of_a_credit_record_in_any_office_form():
    row = credit_row(MAN, "行政处罚", decided_on="2025年6月1日", valid_until="20270601", publicity_until="2026/06/01")
    draft = credit_draft(row, today=TODAY)
    assert (draft.decided_on, draft.valid_until, draft.publicity_until) == (
        date(2025, 6, 1), date(2027, 6, 1), date(2026, 6, 1)
    )


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("subject", "", "is required"),
        ("category", "", "is required"),
        ("category", "批评", "is not a credit category"),
        ("decided_on", "", "is required"),
        ("decided_on", "2026-03-16", "is in the future"),
        ("valid_until", "2025-05-31", "is before the decision date"),
        ("publicity_until", "2025-05-31", "is before the decision date"),
        ("decision_number", "号" * 101, "is longer than 100 characters"),
        ("summary", "事" * 1001, "is longer than 1000 characters"),
    ],
)
def test_each_credit_field_rule(field, value, message):
    found = problems_of(credit_draft, credit_row(MAN, "行政处罚", **{field: value}))
    assert list(found) == [field]
    assert message in found[field][0]


def test_every_problem_of_one_credit_record_is_reported_with_its_field():
    row = credit_row("nobody", "批评", decided_on="2099-01-01", valid_until="garbage")
    assert set(problems_of(credit_draft, row)) == {"subject", "category", "decided_on", "valid_until"}
