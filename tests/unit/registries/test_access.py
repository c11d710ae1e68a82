"""Who sees which registry records, how much of them, and who may change them."""

from datetime import date

import pytest
from factories import (
    a_person,
    admin,
    auditor,
    community_staff,
    credit_record,
    official,
    person,
    police,
    property_manager,
    resident,
    traffic_engineer,
)

from sunflower.auth.principals import SYSTEM, Principal, PrincipalKind, Role
from sunflower.common.errors import PermissionDenied
from sunflower.registries.access import (
    Visibility,
    mask_id_number,
    mask_phone,
    may_see_credit,
    may_see_person_profile,
    person_visibility,
    require_official,
    require_person_writer,
    require_signed_in,
    view,
)
from sunflower.registries.models import Address, CreditCategory, SubjectType

HOME = "pf-youxie-xingfu"
ELSEWHERE = "pf-xinjiang-shengli"
PURPOSE = "case 2026-031 identity check"
PUBLIC = [c for c in CreditCategory if c not in (CreditCategory.ARREARS, CreditCategory.COMPLAINT)]
NOT_PUBLIC = [CreditCategory.ARREARS, CreditCategory.COMPLAINT]


@pytest.fixture
def someone():
    """A resident of HOME with a phone and a registered (户籍) address."""
    return a_person(id="p-someone", community_id=HOME)


# --- the role matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "viewer, purpose, expected",
    [
        (police(), PURPOSE, Visibility.FULL),
        (police(), "", Visibility.MASKED),
        (police(), "   ", Visibility.MASKED),  # blank is no purpose
        (official(), PURPOSE, Visibility.FULL),
        (official(), "", Visibility.MASKED),
        (community_staff(HOME), "", Visibility.MASKED),
        (community_staff(HOME), PURPOSE, Visibility.MASKED),  # a purpose does not unmask a scoped role
        (community_staff(ELSEWHERE), PURPOSE, Visibility.NONE),
        (community_staff(None), PURPOSE, Visibility.NONE),  # no community claim, no scope
        (property_manager(HOME), "", Visibility.MASKED),
        (property_manager(ELSEWHERE), PURPOSE, Visibility.NONE),
        (resident(id="p-someone"), "", Visibility.FULL),
        (resident(id="p-other"), PURPOSE, Visibility.NONE),
        (auditor(), PURPOSE, Visibility.NONE),
        (admin(), PURPOSE, Visibility.NONE),
        (traffic_engineer(), PURPOSE, Visibility.NONE),
        (person(), PURPOSE, Visibility.NONE),  # signed in, no role
        (Principal(id="gate-1", kind=PrincipalKind.DEVICE), PURPOSE, Visibility.NONE),
        (SYSTEM, "", Visibility.FULL),
    ],
    ids=lambda v: v.id if isinstance(v, Principal) else None,
)
def test_person_visibility_by_role(someone, viewer, purpose, expected):
    assert person_visibility(viewer, someone, purpose) is expected


def test_community_staff_see_nobody_without_a_current_community(someone):
    homeless = a_person(community_id=None)
    assert homeless.community_id is None
    assert person_visibility(community_staff(HOME), homeless, "") is Visibility.NONE


def test_the_best_of_several_roles_applies(someone):
    # given community staff of another community who is also police
    viewer = person(Role.COMMUNITY_STAFF, Role.POLICE, community_id=ELSEWHERE)
    # then a stated purpose gives the police view; without one, the masked police view
    assert person_visibility(viewer, someone, PURPOSE) is Visibility.FULL
    assert person_visibility(viewer, someone, "") is Visibility.MASKED


def test_a_resident_who_manages_their_own_building_sees_themselves_in_full(someone):
    viewer = person(Role.RESIDENT, Role.PROPERTY_MANAGER, id="p-someone", community_id=HOME)
    assert person_visibility(viewer, someone, "") is Visibility.FULL


# --- masking ------------------------------------------------------------------------------------


def test_an_id_number_is_masked_to_its_first_6_and_last_4_characters():
    assert mask_id_number("23010819840709106X") == "230108********106X"


def test_a_mobile_number_is_masked_to_its_first_3_and_last_4_digits():
    assert mask_phone("13812345678") == "138****5678"


def test_a_landline_is_masked_to_its_first_3_and_last_4_characters():
    assert mask_phone("0451-86123456") == "045******3456"


@pytest.mark.parametrize("value", [None, ""])
def test_no_phone_stays_no_phone(value):
    assert mask_phone(value) == value


def test_the_masked_view_masks_id_number_and_phone_and_withholds_the_registered_address():
    someone = a_person(id_number="23010819840709106X", phone="13812345678")
    seen = view(someone, Visibility.MASKED)
    assert seen.masked and not seen.full
    assert seen.id_number == "230108********106X"
    assert seen.phone == "138****5678"
    assert seen.registered_address is None


def test_the_full_view_shows_everything():
    someone = a_person(id_number="23010819840709106X", phone="13812345678",
                       registered_address=Address(district="平房区", detail="友协大街101号"))
    seen = view(someone, Visibility.FULL)
    assert seen.full and not seen.masked
    assert (seen.id_number, seen.phone) == ("23010819840709106X", "13812345678")
    assert seen.registered_address.detail == "友协大街101号"


# --- credit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("category", PUBLIC)
@pytest.mark.parametrize(
    "viewer", [resident(id="p-other"), traffic_engineer(), community_staff(ELSEWHERE), police()], ids=lambda v: v.id
)
def test_public_credit_records_are_visible_to_anyone_signed_in(category, viewer):
    record = credit_record(category, decided_on=date(2025, 6, 1), subject_id="p-someone")
    assert may_see_credit(viewer, record, "")


@pytest.mark.parametrize("category", NOT_PUBLIC)
@pytest.mark.parametrize(
    "viewer, purpose, allowed",
    [
        (police(), PURPOSE, True),
        (official(), PURPOSE, True),
        (police(), "", False),
        (official(), "  ", False),
        (resident(id="p-someone"), "", True),  # the subject
        (resident(id="p-other"), PURPOSE, False),
        (community_staff(HOME), PURPOSE, False),
        (property_manager(HOME), PURPOSE, False),
        (auditor(), PURPOSE, False),
        (admin(), PURPOSE, False),
        (SYSTEM, "", True),
    ],
    ids=lambda v: v.id if isinstance(v, Principal) else None,
)
def test_unpublished_credit_records_of_a_person(category, viewer, purpose, allowed):
    record = credit_record(category, decided_on=date(2025, 6, 1), subject_id="p-someone")
    assert may_see_credit(viewer, record, purpose) is allowed


def test_a_person_whose_id_is_an_entitys_id_is_not_its_subject():
    record = credit_record(CreditCategory.ARREARS, decided_on=date(2025, 6, 1), subject_id="e-1",
                           subject_type=SubjectType.ENTITY)
    assert not may_see_credit(resident(id="e-1"), record, "")
    assert may_see_credit(official(), record, PURPOSE)


@pytest.mark.parametrize(
    "viewer, purpose, allowed",
    [
        (police(), PURPOSE, True),
        (official(), PURPOSE, True),
        (official(), "", False),
        (resident(id="p-someone"), "", True),
        (resident(id="p-other"), PURPOSE, False),
        (community_staff(HOME), PURPOSE, False),
        (SYSTEM, "", True),
    ],
    ids=lambda v: v.id if isinstance(v, Principal) else None,
)
def test_a_persons_credit_profile(viewer, purpose, allowed):
    assert may_see_person_profile(viewer, "p-someone", purpose) is allowed


# --- writers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", [official(), SYSTEM, community_staff(HOME)], ids=lambda a: a.id)
def test_who_may_change_a_resident_of_home(actor):
    require_person_writer(actor, HOME)


@pytest.mark.parametrize(
    "actor, community",
    [
        (community_staff(HOME), ELSEWHERE),
        (community_staff(HOME), None),
        (community_staff(None), None),
        (property_manager(HOME), HOME),
        (police(), HOME),
        (resident(), HOME),
        (admin(), HOME),
    ],
    ids=lambda a: a.id if isinstance(a, Principal) else str(a),
)
def test_who_may_not_change_a_person(actor, community):
    with pytest.raises(PermissionDenied):
        require_person_writer(actor, community)


@pytest.mark.parametrize("actor", [police(), community_staff(HOME), admin(), auditor(), resident()], ids=lambda a: a.id)
def test_only_officials_and_the_system_pass_require_official(actor):
    require_official(official(), "merge records")
    require_official(SYSTEM, "merge records")
    with pytest.raises(PermissionDenied) as caught:
        require_official(actor, "merge records")
    assert caught.value.message == "only officials merge records"


def test_reading_needs_a_signed_in_viewer():
    viewer = resident()
    assert require_signed_in(viewer) is viewer
    with pytest.raises(PermissionDenied):
        require_signed_in(None)
