"""People's bearer tokens, verified against the local Cognito user pool's published keys."""

import gzip
import json
import time
from pathlib import Path

import jwt
import moto
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sunflower.auth.principals import PrincipalKind, Role
from sunflower.aws.clients import client
from sunflower.common.errors import Unauthenticated
from sunflower.common.settings import get_settings
from sunflower.container import services

PASSWORD = "Sunflower-Passw0rd-2025"
# moto signs every pool's tokens with this key and publishes its public half under kid "dummy".
MOTO_PRIVATE_JWK = Path(moto.__file__).parent / "cognitoidp" / "resources" / "jwks-private.json.gz"


@pytest.fixture
def pool(local_cloud):
    return local_cloud.identity


def _sign_in(pool, username: str, *groups: str, attributes: dict[str, str] | None = None) -> dict:
    """A person created by an admin, put in groups, signed in with a password: their tokens."""
    cognito = client("cognito-idp")
    cognito.admin_create_user(
        UserPoolId=pool.user_pool_id,
        Username=username,
        TemporaryPassword="Temporary-Passw0rd-1",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in (attributes or {}).items()],
    )
    for group in groups:
        cognito.admin_add_user_to_group(UserPoolId=pool.user_pool_id, Username=username, GroupName=group)
    cognito.admin_set_user_password(UserPoolId=pool.user_pool_id, Username=username, Password=PASSWORD, Permanent=True)
    result = cognito.admin_initiate_auth(
        UserPoolId=pool.user_pool_id,
        ClientId=pool.client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )
    return result["AuthenticationResult"]


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _moto_key():
    return jwt.PyJWK(json.loads(gzip.decompress(MOTO_PRIVATE_JWK.read_bytes()))).key


def _resign(token: str, **changes) -> str:
    """The same token with some claims changed, signed with the issuer's own key: only those claims differ."""
    return jwt.encode({**_claims(token), **changes}, _moto_key(), algorithm="RS256", headers={"kid": "dummy"})


def _rejected(token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        services().tokens.verify(token)
    return caught.value.message


@pytest.fixture
def id_token(pool) -> str:
    return _sign_in(pool, "li.wei", "police", "official")["IdToken"]


# --- accepted ------------------------------------------------------------------------------------


def test_the_verifier_is_configured_from_the_local_cloud(pool):
    settings = get_settings()
    assert settings.jwt_issuer == pool.issuer
    assert settings.jwt_audience == pool.client_id
    assert settings.jwt_jwks_url == pool.jwks_url


def test_an_id_token_becomes_a_person_with_roles_from_their_groups(pool):
    # given a person an admin put in the police and official groups, with a community attribute
    tokens = _sign_in(pool, "li.wei", "police", "official", attributes={"custom:community_id": "community-7"})
    # when their ID token is verified
    principal = services().tokens.verify(tokens["IdToken"])
    # then they are that person, with those roles and that scope
    assert principal.id == "li.wei"
    assert principal.kind is PrincipalKind.PERSON
    assert principal.roles == {Role.POLICE, Role.OFFICIAL}
    assert principal.community_id == "community-7"


def test_the_person_id_attribute_names_the_principal(pool):
    tokens = _sign_in(pool, "zhang.min", "resident", attributes={"custom:person_id": "P-110105-0042"})
    assert services().tokens.verify(tokens["IdToken"]).id == "P-110105-0042"


def test_a_person_in_no_group_has_no_roles(pool):
    tokens = _sign_in(pool, "visitor")
    assert services().tokens.verify(tokens["IdToken"]).roles == frozenset()


def test_an_access_token_for_this_app_is_accepted_as_the_same_person(pool):
    # given a person's access token (it names the app in client_id, not aud)
    tokens = _sign_in(pool, "li.wei", "auditor")
    assert _claims(tokens["AccessToken"])["client_id"] == pool.client_id
    assert "aud" not in _claims(tokens["AccessToken"])
    # when it is verified
    from_access = services().tokens.verify(tokens["AccessToken"])
    # then it is the same principal the ID token gives
    assert from_access.roles == {Role.AUDITOR}
    assert from_access.id == services().tokens.verify(tokens["IdToken"]).id == "li.wei"


def test_a_token_re_signed_unchanged_with_the_issuers_key_is_accepted(id_token):
    # the control for the tests below: only the one changed claim makes them fail
    assert services().tokens.verify(_resign(id_token)).id == "li.wei"


# --- rejected ------------------------------------------------------------------------------------


def test_a_token_forged_with_another_key_under_the_issuers_kid_is_rejected(id_token):
    # given a forger who copies a real token's claims, makes themselves admin and signs with their own key
    forger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {**_claims(id_token), "cognito:groups": ["admin"]}, forger_key, algorithm="RS256", headers={"kid": "dummy"}
    )
    # then the signature check refuses it
    assert _rejected(forged) == "token signature is not valid"


def test_a_token_whose_claims_were_edited_after_signing_is_rejected(id_token):
    header, payload, signature = id_token.split(".")
    claims = {**_claims(id_token), "cognito:groups": ["admin"]}
    edited_payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    assert _rejected(f"{header}.{edited_payload}.{signature}") == "token signature is not valid"


def test_a_token_signed_by_a_key_the_issuer_does_not_publish_is_rejected(id_token):
    forger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(id_token), forger_key, algorithm="RS256", headers={"kid": "forger-key-1"})
    assert _rejected(forged) == "token signed by a key the issuer does not publish"


def test_an_expired_token_is_rejected(id_token):
    an_hour_ago = int(time.time()) - 3600
    expired = _resign(id_token, iat=an_hour_ago - 3600, auth_time=an_hour_ago - 3600, exp=an_hour_ago)
    assert _rejected(expired) == "token expired; sign in again"


def test_an_id_token_for_another_app_is_rejected(id_token):
    assert _rejected(_resign(id_token, aud="another-app-client")) == (
        "token was issued for another application (wrong audience)"
    )


def test_an_access_token_for_another_app_is_rejected(pool):
    access = _sign_in(pool, "li.wei", "police")["AccessToken"]
    assert "wrong audience" in _rejected(_resign(access, client_id="another-app-client"))


def test_a_token_from_another_issuer_is_rejected(pool, id_token):
    other_pool = pool.issuer.rsplit("/", 1)[0] + "/ap-east-1_SomeOtherPool"
    assert _rejected(_resign(id_token, iss=other_pool)) == "token was issued by another issuer"


def test_a_token_without_an_expiry_is_rejected(id_token):
    claims = {k: v for k, v in _claims(id_token).items() if k != "exp"}
    unsigned_expiry = jwt.encode(claims, _moto_key(), algorithm="RS256", headers={"kid": "dummy"})
    assert "exp" in _rejected(unsigned_expiry)


def test_an_unsigned_alg_none_token_is_rejected(id_token):
    unsigned = jwt.encode({**_claims(id_token), "cognito:groups": ["admin"]}, None, algorithm="none")
    assert _rejected(unsigned) == "token algorithm 'none' is not accepted; expected RS256"


def test_an_hs256_token_is_rejected(id_token):
    symmetric = jwt.encode(_claims(id_token), "a-shared-secret-of-32-bytes-long!!", algorithm="HS256")
    assert _rejected(symmetric) == "token algorithm 'HS256' is not accepted; expected RS256"


@pytest.mark.parametrize("garbage", ["", "not-a-token", "a.b.c", "Bearer xyz", "eyJhbGciOiJSUzI1NiJ9", "...."])
def test_garbage_is_rejected_as_malformed(local_cloud, garbage):
    assert _rejected(garbage).startswith("malformed bearer token")
