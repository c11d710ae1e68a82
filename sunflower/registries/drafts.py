"""Turn what people type or upload into validated drafts, collecting every problem of a record.

GraphQL inputs and spreadsheet rows come through here alike, so a rule is checked one way only.
Fields arrive as text keyed by canonical field name; empty text means "not given".
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from sunflower.common.errors import FieldProblem, ValidationFailed
from sunflower.registries.identifiers import IdNumber, parse_id_number, parse_phone
from sunflower.registries.industry import parse_industry_code
from sunflower.registries.models import (
    Address,
    CreditCategory,
    EntityStatus,
    PersonStatus,
    Relationship,
    Sex,
    SubjectType,
)
from sunflower.registries.uscc import parse_credit_code

T = TypeVar("T")
MAX_TEXT = 200

ADDRESS_FIELDS = ("district", "subdistrict", "community_id", "community", "building", "unit", "room", "detail")

# Spreadsheets say these in Chinese as often as in English.
SEX_WORDS = {"男": Sex.MALE, "女": Sex.FEMALE, "male": Sex.MALE, "female": Sex.FEMALE, "m": Sex.MALE, "f": Sex.FEMALE}
STATUS_WORDS = {
    "常住": PersonStatus.RESIDENT, "在册": PersonStatus.RESIDENT, "resident": PersonStatus.RESIDENT,
    "迁出": PersonStatus.MOVED_OUT, "moved_out": PersonStatus.MOVED_OUT,
    "死亡": PersonStatus.DECEASED, "deceased": PersonStatus.DECEASED,
}
RELATIONSHIP_WORDS = {
    "户主": Relationship.HEAD, "本人": Relationship.HEAD, "配偶": Relationship.SPOUSE, "妻": Relationship.SPOUSE,
    "夫": Relationship.SPOUSE, "子": Relationship.CHILD, "女": Relationship.CHILD, "长子": Relationship.CHILD,
    "长女": Relationship.CHILD, "次子": Relationship.CHILD, "次女": Relationship.CHILD, "父亲": Relationship.PARENT,
    "母亲": Relationship.PARENT, "孙子": Relationship.GRANDCHILD, "孙女": Relationship.GRANDCHILD,
    "祖父": Relationship.GRANDPARENT, "祖母": Relationship.GRANDPARENT, "兄弟": Relationship.SIBLING,
    "姐妹": Relationship.SIBLING, "其他": Relationship.OTHER,
    **{r.value: r for r in Relationship},
}
ENTITY_STATUS_WORDS = {
    "存续": EntityStatus.ACTIVE, "在业": EntityStatus.ACTIVE, "开业": EntityStatus.ACTIVE, "active": EntityStatus.ACTIVE,
    "吊销": EntityStatus.REVOKED, "revoked": EntityStatus.REVOKED,
    "注销": EntityStatus.CANCELLED, "cancelled": EntityStatus.CANCELLED,
}
CATEGORY_WORDS = {
    "表彰": CreditCategory.COMMENDATION, "表彰奖励": CreditCategory.COMMENDATION,
    "行政许可": CreditCategory.ADMINISTRATIVE_LICENCE, "行政处罚": CreditCategory.ADMINISTRATIVE_PENALTY,
    "失信被执行人": CreditCategory.DISHONEST_JUDGMENT_DEBTOR, "严重失信主体名单": CreditCategory.SERIOUS_DISHONESTY_LIST,
    "严重失信": CreditCategory.SERIOUS_DISHONESTY_LIST, "红名单": CreditCategory.RED_LIST,
    "守信激励": CreditCategory.RED_LIST, "守合同重信用": CreditCategory.CONTRACT_COMPLIANCE,
    "纳税信用A级": CreditCategory.TAX_CREDIT_A, "欠费": CreditCategory.ARREARS, "欠缴": CreditCategory.ARREARS,
    "投诉": CreditCategory.COMPLAINT,
    **{c.value: c for c in CreditCategory},
}


@dataclass(frozen=True)
class PersonDraft:
    name: str
    id_number: IdNumber
    phone: str | None = None
    registered_address: Address | None = None
    current_address: Address | None = None
    status: PersonStatus = PersonStatus.RESIDENT
    household_no: str | None = None  # 户号
    relationship: Relationship | None = None


@dataclass(frozen=True)
class EntityDraft:
    name: str
    credit_code: str
    legal_rep_id_number: str
    entity_type: str = ""
    registered_capital: Decimal | None = None
    industry_code: str | None = None
    address: Address | None = None
    established_on: date | None = None
    status: EntityStatus = EntityStatus.ACTIVE


@dataclass(frozen=True)
class CreditDraft:
    subject_type: SubjectType
    subject_key: str  # the id number or credit code that names the subject
    category: CreditCategory
    decided_on: date
    department: str = ""
    decision_number: str = ""
    summary: str = ""
    valid_until: date | None = None
    publicity_until: date | None = None


class _Collector:
    """Runs each field's check and keeps every problem instead of stopping at the first."""

    def __init__(self, fields: Mapping[str, str | None]) -> None:
        self.fields = {k: (v or "").strip() for k, v in fields.items()}
        self.problems: list[FieldProblem] = []

    def text(self, name: str, *, required: bool = False, max_len: int = MAX_TEXT) -> str:
        value = self.fields.get(name, "")
        if required and not value:
            self.problems.append(FieldProblem(name, "is required"))
        elif len(value) > max_len:
            self.problems.append(FieldProblem(name, f"is longer than {max_len} characters"))
        return value

    def check(self, name: str, parse: Callable[[str], T], *, required: bool = False) -> T | None:
        value = self.text(name, required=required)
        if not value:
            return None
        try:
            return parse(value)
        except ValidationFailed as exc:
            messages = [p.message for p in exc.problems] or [exc.message]
            self.problems.extend(FieldProblem(name, message) for message in messages)
            return None

    def address(self, prefix: str) -> Address | None:
        parts = {f: self.text(f"{prefix}_{f}") for f in ADDRESS_FIELDS}
        return Address(**parts) if any(parts.values()) else None

    def done(self, what: str) -> None:
        if self.problems:
            summary = "; ".join(f"{p.field}: {p.message}" for p in self.problems)
            raise ValidationFailed(f"{what}: {summary}", problems=tuple(self.problems))


def _word(words: Mapping[str, T], what: str) -> Callable[[str], T]:
    def parse(text: str) -> T:
        key = text.strip()
        found = words.get(key) or words.get(key.lower())
        if found is None:
            allowed = sorted({k for k in words if k.isascii()})
            raise ValidationFailed(f"{text!r} is not a {what}; use one of {', '.join(allowed)} (or the Chinese term)")
        return found

    return parse


def parse_date(text: str) -> date:
    cleaned = text.strip().replace("/", "-").replace(".", "-").replace("年", "-").replace("月", "-").rstrip("日")
    if len(cleaned) == 8 and cleaned.isdigit():
        cleaned = f"{cleaned[:4]}-{cleaned[4:6]}-{cleaned[6:]}"
    try:
        year, month, day = (int(p) for p in cleaned.split("-"))  # exactly three parts: nothing dropped
        return date(year, month, day)
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def _capital(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "").removesuffix("万元").removesuffix("万").strip())
    except InvalidOperation:
        raise ValidationFailed(f"{text!r} is not an amount in 10,000 yuan") from None
    if not value.is_finite() or value < 0:  # NaN first: comparing it raises InvalidOperation
        raise ValidationFailed("must be a positive amount in 10,000 yuan")
    return value


def _name(c: _Collector, field: str = "name") -> str:
    name = c.text(field, required=True, max_len=100)
    if name and any(ch in name for ch in "\t\n\r<>"):
        c.problems.append(FieldProblem(field, "contains control or markup characters"))
    return name


def person_draft(fields: Mapping[str, str | None], *, today: date) -> PersonDraft:
    """Validate a person; sex and birth date, when given, must agree with the id number."""
    c = _Collector(fields)
    name = _name(c)
    id_number = c.check("id_number", lambda t: parse_id_number(t, today=today), required=True)
    given_sex = c.check("sex", _word(SEX_WORDS, "sex"))
    given_birth = c.check("birth_date", parse_date)
    if id_number and given_sex and given_sex is not id_number.sex:
        c.problems.append(FieldProblem("sex", f"is {given_sex.value} but the id number says {id_number.sex.value}"))
    if id_number and given_birth and given_birth != id_number.birth_date:
        c.problems.append(
            FieldProblem("birth_date", f"is {given_birth} but the id number says {id_number.birth_date}")
        )
    phone = c.check("phone", parse_phone)
    status = c.check("status", _word(STATUS_WORDS, "status")) or PersonStatus.RESIDENT
    relationship = c.check("relationship", _word(RELATIONSHIP_WORDS, "relationship to the head of household"))
    household_no = c.text("household_no", max_len=40) or None
    if relationship and not household_no:
        c.problems.append(FieldProblem("household_no", "is required when a relationship to the head is given"))
    registered, current = c.address("registered"), c.address("current")
    c.done("person")
    assert id_number is not None
    return PersonDraft(name, id_number, phone, registered, current, status, household_no, relationship)


def entity_draft(fields: Mapping[str, str | None], *, today: date) -> EntityDraft:
    c = _Collector(fields)
    name = _name(c)
    code = c.check("credit_code", parse_credit_code, required=True)
    rep = c.check("legal_rep_id_number", lambda t: parse_id_number(t, today=today), required=True)
    industry = c.check("industry_code", parse_industry_code)
    established = c.check("established_on", parse_date)
    if established and established > today:
        c.problems.append(FieldProblem("established_on", f"{established} is in the future"))
    draft = EntityDraft(
        name=name,
        credit_code=code.value if code else "",
        legal_rep_id_number=rep.value if rep else "",
        entity_type=c.text("entity_type", max_len=60),
        registered_capital=c.check("registered_capital", _capital),
        industry_code=industry.code if industry else None,
        address=c.address("address"),
        established_on=established,
        status=c.check("status", _word(ENTITY_STATUS_WORDS, "legal entity status")) or EntityStatus.ACTIVE,
    )
    c.done("legal entity")
    return draft


def credit_draft(fields: Mapping[str, str | None], *, today: date) -> CreditDraft:
    c = _Collector(fields)
    subject = c.text("subject", required=True, max_len=40).upper()
    subject_type, subject_key = SubjectType.PERSON, subject
    if subject:
        try:
            subject_key = parse_id_number(subject, today=today).value
        except ValidationFailed as as_person:
            try:
                subject_key, subject_type = parse_credit_code(subject).value, SubjectType.ENTITY
            except ValidationFailed as as_entity:
                c.problems.append(
                    FieldProblem("subject", f"is neither an id number ({as_person.message}) nor a credit code "
                                            f"({as_entity.message})")
                )
    category = c.check("category", _word(CATEGORY_WORDS, "credit category"), required=True)
    decided_on = c.check("decided_on", parse_date, required=True)
    if decided_on and decided_on > today:
        c.problems.append(FieldProblem("decided_on", f"{decided_on} is in the future"))
    valid_until = c.check("valid_until", parse_date)
    publicity_until = c.check("publicity_until", parse_date)
    for field, value in (("valid_until", valid_until), ("publicity_until", publicity_until)):
        if value and decided_on and value < decided_on:
            c.problems.append(FieldProblem(field, f"{value} is before the decision date {decided_on}"))
    draft = CreditDraft(
        subject_type=subject_type,
        subject_key=subject_key,
        category=category or CreditCategory.COMMENDATION,
        decided_on=decided_on or today,
        department=c.text("department", max_len=100),
        decision_number=c.text("decision_number", max_len=100),
        summary=c.text("summary", max_len=1000),
        valid_until=valid_until,
        publicity_until=publicity_until,
    )
    c.done("credit record")
    return draft
