"""Verify RS256 JWTs from a Cognito-compatible issuer and turn them into principals."""

from typing import Any

import jwt

from sunflower.auth.principals import Principal, Role
from sunflower.common.errors import Unauthenticated

_ALGORITHMS = ["RS256"]


class TokenVerifier:
    def __init__(self, *, issuer: str, audience: str, jwks_url: str, leeway_s: int = 30) -> None:
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_s
        self._jwks = jwt.PyJWKClient(jwks_url, cache_jwk_set=True, lifespan=300, timeout=5) if jwks_url else None

    def verify(self, token: str) -> Principal:
        claims = self._claims(token)
        return principal_from_claims(claims)

    def _claims(self, token: str) -> dict[str, Any]:
        if self._jwks is None or not self._issuer or not self._audience:
            raise Unauthenticated("this API has no token issuer configured (SUNFLOWER_JWT_*)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise Unauthenticated(f"malformed bearer token: {exc}") from None
        if header.get("alg") not in _ALGORITHMS:
            raise Unauthenticated(f"token algorithm {header.get('alg')!r} is not accepted; expected RS256")
        try:
            key = self._jwks.get_signing_key(header.get("kid", ""))
        except jwt.PyJWKClientConnectionError:
            raise Unauthenticated("the token issuer's keys could not be fetched; try again") from None
        except jwt.PyJWKClientError:
            raise Unauthenticated("token signed by a key the issuer does not publish") from None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=_ALGORITHMS,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired; sign in again") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token was issued by another issuer") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("token signature is not valid") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"token rejected: {exc}") from None
        # Cognito ID tokens carry the app client in `aud`, access tokens in `client_id`.
        audience = claims.get("aud") if claims.get("token_use", "id") == "id" else claims.get("client_id")
        if audience != self._audience:
            raise Unauthenticated("token was issued for another application (wrong audience)")
        return claims


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    groups = claims.get("cognito:groups") or []
    roles = frozenset(Role(g) for g in groups if g in Role._value2member_map_)
    return Principal(
        # ID tokens name the user in `cognito:username`, access tokens in `username`: same person, same id.
        id=str(
            claims.get("custom:person_id") or claims.get("cognito:username") or claims.get("username") or claims["sub"]
        ),
        roles=roles,
        community_id=claims.get("custom:community_id"),
        department=claims.get("custom:department"),
    )
