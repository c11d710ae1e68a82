"""How credit records add up to a credit profile: grade, the factors behind it, red and black lists.

The weights follow the shape of the district's public credit evaluation rules: commendations and
incentive lists raise the score, penalties lower it while they are in force and recent, and the
two joint-punishment lists (失信被执行人, 严重失信主体名单) put a subject on the black list, grade D.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sunflower.registries.models import (
    CreditCategory,
    CreditFactor,
    CreditProfile,
    CreditRecord,
    SubjectType,
)

BASE_SCORE = 100
LOOKBACK_DAYS = 3 * 365


@dataclass(frozen=True)
class _Rule:
    points: int
    cap: int  # the most this category can add or take in total
    label: str


RULES: dict[CreditCategory, _Rule] = {
    CreditCategory.COMMENDATION: _Rule(5, 15, "commendation"),
    CreditCategory.RED_LIST: _Rule(10, 10, "on the red list (守信激励)"),
    CreditCategory.CONTRACT_COMPLIANCE: _Rule(5, 5, "contract compliance (守合同重信用)"),
    CreditCategory.TAX_CREDIT_A: _Rule(5, 5, "tax credit grade A"),
    CreditCategory.ADMINISTRATIVE_LICENCE: _Rule(0, 0, "administrative licence"),
    CreditCategory.ADMINISTRATIVE_PENALTY: _Rule(-10, -40, "administrative penalty"),
    CreditCategory.ARREARS: _Rule(-5, -15, "arrears"),
    CreditCategory.COMPLAINT: _Rule(-3, -9, "verified complaint"),
    CreditCategory.DISHONEST_JUDGMENT_DEBTOR: _Rule(-40, -40, "dishonest judgment debtor (失信被执行人)"),
    CreditCategory.SERIOUS_DISHONESTY_LIST: _Rule(-50, -50, "serious dishonesty list (严重失信主体名单)"),
}
BLACK_LIST = {CreditCategory.DISHONEST_JUDGMENT_DEBTOR, CreditCategory.SERIOUS_DISHONESTY_LIST}


def counts(record: CreditRecord, today: date) -> bool:
    """A record weighs while it is in force and, unless it is a list entry, for three years."""
    if not record.in_force(today) or record.decided_on > today:
        return False
    if record.category in BLACK_LIST or record.category is CreditCategory.RED_LIST:
        return True
    return (today - record.decided_on).days <= LOOKBACK_DAYS


def grade_of(score: int, black_list: bool) -> str:
    if black_list or score < 70:
        return "D"
    if score >= 105:
        return "A"
    if score >= 90:
        return "B"
    return "C"


def compute_profile(subject_type: SubjectType, subject_id: str, records: list[CreditRecord], today: date) -> CreditProfile:
    factors: list[CreditFactor] = []
    totals: dict[CreditCategory, int] = defaultdict(int)
    for record in sorted(records, key=lambda r: (r.decided_on, r.id)):
        if not counts(record, today):
            continue
        rule = RULES[record.category]
        remaining = rule.cap - totals[record.category]
        points = max(rule.points, remaining) if rule.points < 0 else min(rule.points, remaining)
        totals[record.category] += points
        factors.append(CreditFactor(f"{rule.label}: {record.decision_number}", points, record.id, record.public))
    black = any(f.record_id and _category(records, f.record_id) in BLACK_LIST for f in factors)
    red = not black and any(f.record_id and _category(records, f.record_id) is CreditCategory.RED_LIST for f in factors)
    score = BASE_SCORE + sum(f.points for f in factors)
    return CreditProfile(
        subject_type=subject_type,
        subject_id=subject_id,
        grade=grade_of(score, black),
        score=score,
        factors=tuple(factors),
        red_list=red,
        black_list=black,
        computed_on=today,
        record_count=len(records),
    )


def next_change(records: list[CreditRecord], today: date) -> date | None:
    """The first day on which the profile computed today would differ (a record expiring or ageing out)."""
    days: list[date] = []
    for record in records:
        if not record.in_force(today):
            continue  # out of force for good: it never weighs again, so it changes nothing
        if record.valid_until and record.valid_until >= today:
            days.append(record.valid_until.fromordinal(record.valid_until.toordinal() + 1))
        if record.decided_on > today:
            days.append(record.decided_on)
        elif record.category not in BLACK_LIST and record.category is not CreditCategory.RED_LIST:
            ages_out = record.decided_on.fromordinal(record.decided_on.toordinal() + LOOKBACK_DAYS + 1)
            if ages_out > today:
                days.append(ages_out)
    return min(days) if days else None


def _category(records: list[CreditRecord], record_id: str) -> CreditCategory | None:
    return next((r.category for r in records if r.id == record_id), None)
