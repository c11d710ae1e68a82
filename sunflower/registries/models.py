"""Population, legal-entity and credit registries: what a record is, independent of storage and API."""

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


class PersonStatus(StrEnum):
    RESIDENT = "resident"
    MOVED_OUT = "moved_out"
    DECEASED = "deceased"
    MERGED = "merged"  # a duplicate folded into another record


class Relationship(StrEnum):
    """Relationship to the head of the household (与户主关系)."""

    HEAD = "head"
    SPOUSE = "spouse"
    CHILD = "child"
    PARENT = "parent"
    GRANDCHILD = "grandchild"
    GRANDPARENT = "grandparent"
    SIBLING = "sibling"
    OTHER = "other"


@dataclass(frozen=True)
class Address:
    """A structured address; `community_id` is what gates, staff scopes and statistics key on."""

    district: str = ""
    subdistrict: str = ""  # 街道
    community_id: str = ""  # 社区 code, e.g. "pf-youxie-xingfu"
    community: str = ""  # 社区 name
    building: str = ""  # 楼栋
    unit: str = ""  # 单元
    room: str = ""  # 房号
    detail: str = ""  # anything else (street and number, village group)

    def line(self) -> str:
        parts = [self.district, self.subdistrict, self.community, self.detail]
        if self.building:
            parts.append(f"{self.building}栋")
        if self.unit:
            parts.append(f"{self.unit}单元")
        if self.room:
            parts.append(f"{self.room}室")
        return "".join(p for p in parts if p)


@dataclass(frozen=True)
class StatusChange:
    status: PersonStatus
    at: datetime
    by: str
    reason: str


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    id_number: str
    sex: Sex
    birth_date: date
    status: PersonStatus
    created_at: datetime
    updated_at: datetime
    phone: str | None = None
    registered_address: Address | None = None  # 户籍地址
    current_address: Address | None = None  # 现住址
    household_id: str | None = None
    relationship: Relationship | None = None
    history: tuple[StatusChange, ...] = ()
    merged_into: str | None = None
    watchlisted: bool = False  # on the police watchlist; shown to the police only
    version: int = 1

    @property
    def community_id(self) -> str | None:
        return self.current_address.community_id if self.current_address and self.current_address.community_id else None

    @property
    def active(self) -> bool:
        """Living at their registered situation: any other status (moved out, deceased, merged) is not."""
        return self.status is PersonStatus.RESIDENT and self.merged_into is None

    def changed(self, **changes) -> "Person":
        return replace(self, **changes)


@dataclass(frozen=True)
class Residency:
    """Where a person lives and whether they still count as living there, as the gate checks it."""

    person_id: str
    community_id: str | None
    active: bool
    watchlisted: bool

    @classmethod
    def of(cls, person: Person) -> "Residency":
        return cls(person.id, person.community_id, person.active, person.watchlisted)


@dataclass(frozen=True)
class ResidencyChange:
    """A person left a community (their current address's community changed) or stopped being active.

    `previous_community_id` is where they were counted before the write, `community_id` and `active`
    what holds after it. Becoming active again, or gaining a community while having none, is no change.
    """

    person_id: str
    previous_community_id: str | None
    community_id: str | None
    active: bool

    @classmethod
    def between(cls, before: Person, after: Person) -> "ResidencyChange | None":
        left = before.community_id is not None and after.community_id != before.community_id
        stopped = before.active and not after.active
        if not (left or stopped):
            return None
        return cls(after.id, before.community_id, after.community_id, after.active)


@dataclass(frozen=True)
class HouseholdMember:
    person_id: str
    relationship: Relationship


@dataclass(frozen=True)
class Household:
    id: str
    head_id: str
    address: Address | None
    members: tuple[HouseholdMember, ...]
    created_at: datetime
    version: int = 1


class EntityStatus(StrEnum):
    ACTIVE = "active"  # 存续
    REVOKED = "revoked"  # 吊销
    CANCELLED = "cancelled"  # 注销


@dataclass(frozen=True)
class Entity:
    id: str
    name: str
    credit_code: str
    entity_type: str  # e.g. 有限责任公司
    legal_rep_id: str
    legal_rep_name: str  # public in business registration, unlike the rest of the person
    status: EntityStatus
    created_at: datetime
    updated_at: datetime
    registered_capital: Decimal | None = None  # in 10,000 yuan (万元), as registration documents state it
    industry_code: str | None = None  # GB/T 4754-2017
    address: Address | None = None
    established_on: date | None = None
    status_changed_on: date | None = None
    version: int = 1


class SubjectType(StrEnum):
    PERSON = "person"
    ENTITY = "entity"


class CreditCategory(StrEnum):
    COMMENDATION = "commendation"  # 表彰奖励
    ADMINISTRATIVE_LICENCE = "administrative_licence"  # 行政许可
    ADMINISTRATIVE_PENALTY = "administrative_penalty"  # 行政处罚
    DISHONEST_JUDGMENT_DEBTOR = "dishonest_judgment_debtor"  # 失信被执行人
    SERIOUS_DISHONESTY_LIST = "serious_dishonesty_list"  # 严重失信主体名单
    RED_LIST = "red_list"  # 守信激励对象（红名单）
    CONTRACT_COMPLIANCE = "contract_compliance"  # 守合同重信用
    TAX_CREDIT_A = "tax_credit_a"  # 纳税信用A级
    ARREARS = "arrears"  # 欠缴（公共事业费等），not published
    COMPLAINT = "complaint"  # 投诉举报（经核实），not published


# Published through the national credit platform ("双公示", lists): visible to any signed-in user.
PUBLIC_CATEGORIES = frozenset(
    {
        CreditCategory.COMMENDATION,
        CreditCategory.ADMINISTRATIVE_LICENCE,
        CreditCategory.ADMINISTRATIVE_PENALTY,
        CreditCategory.DISHONEST_JUDGMENT_DEBTOR,
        CreditCategory.SERIOUS_DISHONESTY_LIST,
        CreditCategory.RED_LIST,
        CreditCategory.CONTRACT_COMPLIANCE,
        CreditCategory.TAX_CREDIT_A,
    }
)


@dataclass(frozen=True)
class CreditRecord:
    id: str
    subject_type: SubjectType
    subject_id: str
    category: CreditCategory
    department: str  # issuing department
    decision_number: str  # 决定书文号
    decided_on: date
    created_at: datetime
    summary: str = ""
    valid_until: date | None = None
    publicity_until: date | None = None

    @property
    def public(self) -> bool:
        return self.category in PUBLIC_CATEGORIES

    def in_force(self, today: date) -> bool:
        return self.valid_until is None or self.valid_until >= today


@dataclass(frozen=True)
class CreditFactor:
    description: str
    points: int
    record_id: str | None = None
    public: bool = True  # from a published category; unpublished factors are shown to the entitled only


@dataclass(frozen=True)
class CreditProfile:
    subject_type: SubjectType
    subject_id: str
    grade: str  # A, B, C, D
    score: int
    factors: tuple[CreditFactor, ...]
    red_list: bool
    black_list: bool
    computed_on: date
    record_count: int = 0


@dataclass(frozen=True)
class PersonView:
    """A person as one viewer may see them: masked fields are already masked here."""

    person: Person
    masked: bool
    id_number: str
    phone: str | None
    registered_address: Address | None
    watchlisted: bool | None = None  # None unless the viewer may know (the police)
    full: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "full", not self.masked)
