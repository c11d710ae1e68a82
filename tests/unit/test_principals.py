"""Principals, roles, and the claims a token turns into."""

import pytest
from factories import admin, person

from sunflower.auth.principals import SYSTEM, PrincipalKind, Role
from sunflower.auth.tokens import TokenVerifier, principal_from_claims
from sunflower.common.errors import Unauthenticated


def test_has_any_is_true_when_one_role_matches():
    officer = person(Role.POLICE, Role.OFFICIAL)
    assert officer.has_any(Role.ADMIN, Role.POLICE)
    assert not officer.has_any(Role.ADMIN, Role.AUDITOR)
    assert not person().has_any(Role.RESIDENT)


def test_audit_names_say_what_kind_of_principal_acted():
    assert admin(id="u1").audit_name == "person:u1"
    assert SYSTEM.audit_name == "system:sunflower"
    assert SYSTEM.kind is PrincipalKind.SYSTEM


def test_groups_become_roles_and_unknown_groups_are_ignored():
    claims = {"sub": "s-1", "cognito:username": "li.wei", "cognito:groups": ["police", "admin", "superuser"]}
    principal = principal_from_claims(claims)
    assert principal.roles == {Role.POLICE, Role.ADMIN}
    assert principal.kind is PrincipalKind.PERSON


def test_a_token_without_groups_has_no_roles():
    assert principal_from_claims({"sub": "s-1"}).roles == frozenset()


def test_the_person_id_attribute_names_the_principal_before_the_username():
    claims = {"sub": "s-1", "cognito:username": "li.wei", "custom:person_id": "P-42", "custom:community_id": "c-9"}
    principal = principal_from_claims(claims)
    assert principal.id == "P-42"
    assert principal.community_id == "c-9"


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "s-1", "token_use": "id", "cognito:username": "li.wei"},
        {"sub": "s-1", "token_use": "access", "username": "li.wei"},
    ],
    ids=["id-token", "access-token"],
)
def test_id_and_access_tokens_of_one_person_name_the_same_principal(claims):
    assert principal_from_claims(claims).id == "li.wei"


def test_without_a_username_the_subject_names_the_principal():
    assert principal_from_claims({"sub": "s-1"}).id == "s-1"


def test_a_verifier_without_an_issuer_rejects_every_token():
    verifier = TokenVerifier(issuer="", audience="", jwks_url="")
    with pytest.raises(Unauthenticated, match="no token issuer configured"):
        verifier.verify("eyJhbGciOiJSUzI1NiJ9.e30.sig")
