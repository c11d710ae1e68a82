"""Who may see and change which registry records, and how much of them.

  police, official      everything, when they state a purpose; masked without one
  community_staff,      residents of their own community (custom:community_id), masked
  property_manager
  resident              only themselves (custom:person_id), in full
  system                everything (imports, other domains' services)

The police watchlist flag is set and seen by the police only: everyone else reads it as unknown, so
nobody else learns that someone is flagged.

Masked: the id number keeps its first 6 and last 4 characters, the phone its first 3 and last 4,
and the registered (户籍) address is withheld. Credit records of public categories are visible to
anyone signed in; the others to police, officials and the subject.
"""

from enum import Enum

from sunflower.auth.principals import Principal, PrincipalKind, Role
from sunflower.common.errors import PermissionDenied
from sunflower.registries.models import CreditRecord, Person, PersonView, SubjectType

FULL_WITH_PURPOSE = (Role.POLICE, Role.OFFICIAL)
COMMUNITY_SCOPED = (Role.COMMUNITY_STAFF, Role.PROPERTY_MANAGER)


class Visibility(Enum):
    NONE = 0
    MASKED = 1
    FULL = 2


def mask_id_number(value: str) -> str:
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    if not value:
        return value
    return value[:3] + "*" * max(len(value) - 7, 0) + value[-4:]


def _stated(purpose: str | None) -> bool:
    """Blank is no purpose: the audit log records it as 'not stated', so it must not unmask either."""
    return bool(purpose and purpose.strip())


def person_visibility(viewer: Principal, person: Person, purpose: str) -> Visibility:
    if viewer.kind is PrincipalKind.SYSTEM:
        return Visibility.FULL
    best = Visibility.NONE
    if viewer.has_any(*FULL_WITH_PURPOSE):
        best = Visibility.FULL if _stated(purpose) else Visibility.MASKED
    if viewer.has_any(Role.RESIDENT) and viewer.id == person.id:
        best = Visibility.FULL
    if (best is Visibility.NONE and viewer.has_any(*COMMUNITY_SCOPED) and viewer.community_id
            and person.community_id == viewer.community_id):
        best = Visibility.MASKED
    return best


def may_know_watchlist(viewer: Principal | None) -> bool:
    return viewer is not None and (viewer.kind is PrincipalKind.SYSTEM or viewer.has_any(Role.POLICE))


def view(person: Person, visibility: Visibility, viewer: Principal | None = None) -> PersonView:
    """The person as `viewer` may see them; the watchlist flag only for those who may know it."""
    flag = person.watchlisted if may_know_watchlist(viewer) else None
    if visibility is Visibility.FULL:
        return PersonView(person, False, person.id_number, person.phone, person.registered_address, flag)
    return PersonView(person, True, mask_id_number(person.id_number), mask_phone(person.phone), None, flag)


def require_police(actor: Principal, what: str) -> None:
    if not actor.has_any(Role.POLICE):
        raise PermissionDenied(f"only the police {what}")


def require_person_writer(actor: Principal, community_id: str | None) -> None:
    """Officials change any record; community staff only records of their own community."""
    if actor.kind is PrincipalKind.SYSTEM or actor.has_any(Role.OFFICIAL):
        return
    if actor.has_any(Role.COMMUNITY_STAFF) and actor.community_id and community_id == actor.community_id:
        return
    raise PermissionDenied(
        "only officials, or community staff for residents of their own community, change the population registry"
    )


def require_official(actor: Principal, what: str) -> None:
    if actor.kind is not PrincipalKind.SYSTEM and not actor.has_any(Role.OFFICIAL):
        raise PermissionDenied(f"only officials {what}")


def require_signed_in(viewer: Principal | None) -> Principal:
    if viewer is None:
        raise PermissionDenied("sign in to read the registries")
    return viewer


def may_see_unpublished_credit(viewer: Principal, subject_type: SubjectType, subject_id: str, purpose: str) -> bool:
    """Unpublished categories (arrears, complaints): police and officials with a purpose, and the subject."""
    if viewer.kind is PrincipalKind.SYSTEM or (viewer.has_any(*FULL_WITH_PURPOSE) and _stated(purpose)):
        return True
    return subject_type is SubjectType.PERSON and viewer.has_any(Role.RESIDENT) and viewer.id == subject_id


def may_see_credit(viewer: Principal, record: CreditRecord, purpose: str) -> bool:
    return record.public or may_see_unpublished_credit(viewer, record.subject_type, record.subject_id, purpose)


def may_see_person_profile(viewer: Principal, person_id: str, purpose: str) -> bool:
    """A person's credit grade weighs unpublished records too: the entitled and the person only."""
    if viewer.kind is PrincipalKind.SYSTEM or (viewer.has_any(*FULL_WITH_PURPOSE) and _stated(purpose)):
        return True
    return viewer.has_any(Role.RESIDENT) and viewer.id == person_id
