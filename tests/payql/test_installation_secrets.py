"""Development signs with secrets made per installation (0600, read back on later starts), never with
a value published in the repository: a token minted with the old public secret is nobody, and
`payql token` mints with the installation's own."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import jwt
import pytest

from payql.auth import TokenVerifier, mint_token
from payql.installation_secrets import with_installation_secrets
from payql.settings import PUBLISHED_SECRETS, Settings, SettingsError
from tests.processes import cli
from tests.testkit import sandbox_settings

OLD_PUBLIC_JWT_SECRET = "payql-development-only-jwt-secret-change-me"


@pytest.fixture(autouse=True)
def empty_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PAYQL_"):
            monkeypatch.delenv(name)


def development(path: Path, **overrides: object) -> Settings:
    return with_installation_secrets(Settings(development_secrets_path=path, **overrides))  # type: ignore[arg-type]


def test_the_defaults_carry_no_secret() -> None:
    settings = Settings()
    assert settings.jwt_secret is None
    assert sandbox_settings(settings).webhook_secrets == []


def test_a_first_start_makes_private_random_secrets_and_later_starts_read_them_back(tmp_path: Path) -> None:
    path = tmp_path / "data" / "development-secrets.json"
    first = development(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.jwt_secret is not None and len(first.jwt_secret.get_secret_value()) >= 32
    assert first.jwt_secret.get_secret_value() not in PUBLISHED_SECRETS
    assert sandbox_settings(first).webhook_secrets[0].startswith("whsec_")
    again = development(path)
    assert again.jwt_secret == first.jwt_secret
    assert sandbox_settings(again).webhook_secrets == sandbox_settings(first).webhook_secrets
    elsewhere = development(tmp_path / "other" / "development-secrets.json")
    assert elsewhere.jwt_secret != first.jwt_secret
    assert [item.name for item in path.parent.iterdir()] == ["development-secrets.json"]


def test_an_instance_signs_with_a_secret_of_its_own_that_every_start_derives_alike(tmp_path: Path) -> None:
    path = tmp_path / "development-secrets.json"
    first = development(path, gateways=["sandbox", "sandbox_backup"])
    primary, backup = (first.gateway(name).webhook_secrets for name in ("sandbox", "sandbox_backup"))  # type: ignore[attr-defined]
    assert backup[0].startswith("whsec_") and len(backup[0]) >= 32
    assert backup != primary
    again = development(path, gateways=["sandbox", "sandbox_backup"])
    assert again.gateway("sandbox_backup") == first.gateway("sandbox_backup")
    assert sandbox_settings(again).webhook_secrets == primary


def test_a_token_minted_with_the_old_public_secret_is_nobody(tmp_path: Path) -> None:
    verifier = TokenVerifier(development(tmp_path / "secrets.json"))
    forged = mint_token(OLD_PUBLIC_JWT_SECRET, "attacker", admin=True)
    assert verifier.principal_from_header(f"Bearer {forged}") is None


def test_the_published_values_are_refused_even_in_development() -> None:
    with pytest.raises(ValueError, match="PAYQL_JWT_SECRET: this value is public"):
        Settings(jwt_secret=OLD_PUBLIC_JWT_SECRET)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="PAYQL_SANDBOX_WEBHOOK_SECRETS: this value is public"):
        Settings(gateway_settings={"sandbox": {"webhook_secrets": ["whsec_payql_sandbox_development"]}})


def test_secrets_that_are_set_are_kept_and_no_file_is_made(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    settings = development(path, jwt_secret="x" * 40, gateway_settings={"sandbox": {"webhook_secrets": ["whsec_mine"]}})
    assert settings.jwt_secret is not None and settings.jwt_secret.get_secret_value() == "x" * 40
    assert sandbox_settings(settings).webhook_secrets == ["whsec_mine"]
    assert not path.exists()


def test_a_secrets_file_others_can_read_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    development(path)
    path.chmod(0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        development(path)


def test_a_garbled_secrets_file_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text('{"jwt_secret": "short"}')
    path.chmod(0o600)
    with pytest.raises(SettingsError, match="delete it"):
        development(path)


async def test_payql_token_mints_with_the_installations_secret(tmp_path: Path) -> None:
    path = tmp_path / "data" / "development-secrets.json"
    env = {"PAYQL_ENVIRONMENT": "development", "PAYQL_DEVELOPMENT_SECRETS_PATH": str(path)}
    minted = (await cli(env, "token", "--sub", "alice", "--admin")).stdout.strip()
    server = TokenVerifier(development(path))
    principal = server.principal_from_header(f"Bearer {minted}")
    assert principal is not None and principal.subject == "alice" and principal.is_admin
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(minted, OLD_PUBLIC_JWT_SECRET, algorithms=["HS256"])
    again = (await cli(env, "token", "--sub", "bob")).stdout.strip()
    assert server.principal_from_header(f"Bearer {again}") is not None
