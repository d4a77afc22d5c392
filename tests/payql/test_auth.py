"""Bearer tokens become principals: only a list of role strings grants staff, and a token whose
subject or email carries a card number is refused like a bad token."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from payql.auth import VERIFIED_TOKEN_SECONDS, TokenVerifier, mint_token, roles_of
from payql.settings import Settings
from resolvers.context import Principal

SECRET = "payql-auth-test-secret-0123456789abcdef"


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(Settings(jwt_secret=SecretStr(SECRET)))


def token(**claims: object) -> str:
    return jwt.encode({"sub": "customer-1", "exp": int(time.time()) + 600} | claims, SECRET, algorithm="HS256")


def principal(verifier: TokenVerifier, **claims: object) -> Principal | None:
    return verifier.principal_from_header(f"Bearer {token(**claims)}")


@pytest.mark.parametrize(
    "claims",
    [{"roles": ["admin"]}, {"roles": ["support", "admin"]}, {"role": "admin"}, {"roles": "nonadmin", "role": "admin"}],
    ids=["roles-list", "one-of-several", "single-role", "bad-roles-good-role"],
)
def test_a_list_of_role_strings_or_a_role_string_grants_staff(
    verifier: TokenVerifier, claims: dict[str, object]
) -> None:
    found = principal(verifier, **claims)
    assert found is not None
    assert found.is_admin


@pytest.mark.parametrize(
    "claims",
    [
        {"roles": "nonadmin"},
        {"roles": "admin"},
        {"roles": "administrators"},
        {"roles": {"admin": True}},
        {"roles": ["admin", 1]},
        {"roles": [["admin"]]},
        {"roles": ["Admin", "nonadmin"]},
        {"roles": None},
        {"role": ["admin"]},
        {"role": "superadmin"},
        {"role": {"admin": 1}},
        {},
    ],
    ids=repr,
)
def test_any_other_shape_of_roles_grants_no_role(verifier: TokenVerifier, claims: dict[str, object]) -> None:
    found = principal(verifier, **claims)
    assert found is not None
    assert found.subject == "customer-1"
    assert not found.is_admin


def test_roles_of_keeps_exact_strings_only() -> None:
    assert roles_of({"roles": ["a", "b"], "role": "c"}) == {"a", "b", "c"}
    assert roles_of({"roles": "nonadmin"}) == frozenset()
    assert roles_of({"roles": ("admin",)}) == frozenset()


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "4000 0077 7000 0831"},
        {"sub": "user-4242424242424242"},
        {"sub": "4242.4242.4242.4242"},
        {"sub": "".join(chr(0xFF10 + int(digit)) for digit in "4242424242424242")},
        {"email": "4242424242424242@shoppers.example"},
        {"email": "a.4000_0077_7000_0831@shoppers.example"},
        {"sub": "4111111111111111", "roles": ["admin"]},
    ],
    ids=["sub-spaced", "sub-embedded", "sub-dots", "sub-full-width", "email", "email-underscores", "admin-sub"],
)
def test_a_token_whose_subject_or_email_carries_a_card_number_is_refused(
    verifier: TokenVerifier, claims: dict[str, object]
) -> None:
    assert principal(verifier, **claims) is None


@pytest.mark.parametrize(
    "subject",
    ["auth0|5f7c8ec7c33c6c004bbafe82", "110169484474386276334", "0d9c8a63-1c4b-4ec2-9a57-3b5f6f2f9e11", "customer-42"],
)
def test_ordinary_subjects_are_kept(verifier: TokenVerifier, subject: str) -> None:
    expires = int(time.time()) + 600
    found = principal(verifier, sub=subject, email="shopper+1234@example.com", exp=expires)
    assert found == Principal(subject=subject, is_admin=False, email="shopper+1234@example.com", expires_at=expires)


def test_minted_tokens_round_trip(verifier: TokenVerifier) -> None:
    staff = verifier.principal_from_token(mint_token(SECRET, "staff-1", admin=True, email="s@example.com"))
    assert staff is not None and staff.expires_at is not None
    assert staff == Principal(subject="staff-1", is_admin=True, email="s@example.com", expires_at=staff.expires_at)
    assert verifier.principal_from_token(mint_token("another-secret-0123456789abcdef012345", "x")) is None


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class CountedDecode:
    """PyJWT's own decode, counted: how often a token was verified for real."""

    def __init__(self) -> None:
        self.calls = 0
        self._decode = jwt.decode

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._decode(*args, **kwargs)


@pytest.fixture
def decode(monkeypatch: pytest.MonkeyPatch) -> CountedDecode:
    counted = CountedDecode()
    monkeypatch.setattr(jwt, "decode", counted)
    return counted


def test_a_verified_token_is_believed_for_a_minute_then_verified_again(decode: CountedDecode) -> None:
    clock = Clock()
    verifier = TokenVerifier(Settings(jwt_secret=SecretStr(SECRET)), clock=clock)
    sent = token(exp=int(clock.now) + 3600)
    first = verifier.principal_from_token(sent)
    assert first is not None
    assert [verifier.principal_from_token(sent) for _ in range(3)] == [first] * 3
    assert decode.calls == 1
    clock.now += VERIFIED_TOKEN_SECONDS + 1
    assert verifier.principal_from_token(sent) == first
    assert decode.calls == 2


def test_a_remembered_token_is_not_believed_past_its_expiry(decode: CountedDecode) -> None:
    clock = Clock()
    verifier = TokenVerifier(Settings(jwt_secret=SecretStr(SECRET)), clock=clock)
    expires = int(clock.now) + 5
    sent = token(exp=expires)
    assert verifier.principal_from_token(sent) is not None
    clock.now = expires  # PyJWT's rule: expired once `exp` is reached
    verifier.principal_from_token(sent)
    assert decode.calls == 2  # decided again, by PyJWT, not by the memory


def test_a_refused_token_is_refused_again_each_time(decode: CountedDecode) -> None:
    verifier = TokenVerifier(Settings(jwt_secret=SecretStr(SECRET)))
    claims = {"sub": "customer-1", "exp": int(time.time()) + 600}
    forged = jwt.encode(claims, "not-the-secret-0123456789abcdef0123", "HS256")
    assert [verifier.principal_from_token(forged) for _ in range(2)] == [None, None]
    assert decode.calls == 2
    # A token that differs from a believed one by a character is its own token: verified, refused.
    good = token()
    assert verifier.principal_from_token(good) is not None
    assert verifier.principal_from_token(good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]) is None
