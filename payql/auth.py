"""Bearer JWT authentication: `sub` is the customer, role `admin` marks merchant staff.

Tokens are verified with an HS256 secret or a JWKS URL (keys fetched and cached by PyJWT).
A token is never logged; a bad token is an anonymous caller, never an error page with details.
The claims we keep (`sub`, `email`) must not carry a card number: such a token is refused like a
bad one, since its subject would land in customers, audit actors and receipts. `roles` counts
only as a list of strings (`role` only as one string); any other shape grants no role.

A token that verified is remembered, by its whole text, for at most a minute and never past its
`exp`: a shopper's SPA sends the same token with every request, and verifying it again each time
cost more than a tenth of a checkout's GraphQL layer. Only a verified token is remembered (a
refusal is decided afresh), and for no longer than a JWKS key removed from the issuer's set goes
on being believed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
from cachetools import TTLCache

from domain.card_numbers import looks_like_card_number
from payql.settings import Settings
from resolvers.context import Principal

ADMIN_ROLE = "admin"
VERIFIED_TOKENS = 4096
VERIFIED_TOKEN_SECONDS = 60.0


class TokenVerifier:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self._secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True) if settings.jwt_jwks_url else None
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._clock = clock
        self._verified: TTLCache[str, Principal] = TTLCache(VERIFIED_TOKENS, VERIFIED_TOKEN_SECONDS, timer=clock)

    def principal_from_header(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return self.principal_from_token(token.strip())

    def principal_from_token(self, token: str) -> Principal | None:
        principal = self._verified.get(token)
        if principal is not None and principal.expires_at is not None and principal.expires_at > self._clock():
            return principal
        principal = self._verify(token)
        if principal is not None:
            self._verified[token] = principal
        return principal

    def _verify(self, token: str) -> Principal | None:
        try:
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = ["RS256", "ES256"]
            elif self._secret is not None:
                key, algorithms = self._secret, ["HS256"]
            else:
                return None
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["sub", "exp"], "verify_aud": self._audience is not None},
            )
        except jwt.PyJWTError:
            return None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            return None
        email = claims.get("email")
        email = email if isinstance(email, str) else None
        if looks_like_card_number(subject) or (email is not None and looks_like_card_number(email)):
            return None
        expires_at = claims.get("exp")
        return Principal(
            subject=subject,
            is_admin=ADMIN_ROLE in roles_of(claims),
            email=email,
            expires_at=float(expires_at) if isinstance(expires_at, int | float) else None,
        )


def roles_of(claims: dict[str, object]) -> frozenset[str]:
    """The roles a token grants: a `roles` list of strings and a `role` string; nothing else.

    A string `roles` ("nonadmin") or a mapping would pass a membership test by substring or key,
    so any shape other than these grants no role at all.
    """
    roles: set[str] = set()
    listed = claims.get("roles")
    if isinstance(listed, list) and all(isinstance(role, str) for role in listed):
        roles.update(listed)
    single = claims.get("role")
    if isinstance(single, str):
        roles.add(single)
    return frozenset(roles)


def mint_token(
    secret: str, subject: str, *, admin: bool = False, email: str | None = None, ttl_seconds: int = 24 * 3600
) -> str:
    """Development helper behind `payql token`; production tokens come from the merchant's IdP."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject, "iat": now, "exp": now + ttl_seconds}
    if admin:
        claims["roles"] = [ADMIN_ROLE]
    if email:
        claims["email"] = email
    return jwt.encode(claims, secret, algorithm="HS256")
