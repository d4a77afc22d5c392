"""Settings from environment variables (pydantic-settings), validated once at start-up.

Every variable is named `PAYQL_<FIELD>` (a few gateway credentials also accept the vendor's usual
name). A bad value fails start-up with a message naming the variable; production refuses to start
with development secrets. Nothing else in PayQL reads the environment.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_JWT_SECRET = "payql-development-only-jwt-secret-change-me"
DEV_SANDBOX_WEBHOOK_SECRET = "whsec_payql_sandbox_development"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class SettingsError(RuntimeError):
    """Raised at start-up; the message names each offending environment variable."""


# Comma-separated in the environment: "https://a.example,https://b.example".
CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYQL_", extra="ignore", frozen=True)

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite://data/payql.sqlite3"
    redis_url: str | None = None
    redis_key_prefix: str = "payql:"

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_base_url: str = "http://127.0.0.1:8000"
    cors_origins: CsvList = Field(default_factory=lambda: ["http://localhost:5173", "http://127.0.0.1:5173"])

    jwt_secret: SecretStr | None = SecretStr(DEV_JWT_SECRET)
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    gateways: CsvList = Field(default_factory=lambda: ["sandbox"])
    sandbox_state_path: Path | None = Path("data/sandbox.sqlite3")
    sandbox_webhook_secrets: CsvList = Field(default_factory=lambda: [DEV_SANDBOX_WEBHOOK_SECRET])

    stripe_secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("PAYQL_STRIPE_SECRET_KEY", "STRIPE_SECRET_KEY")
    )
    stripe_publishable_key: str | None = Field(
        default=None, validation_alias=AliasChoices("PAYQL_STRIPE_PUBLISHABLE_KEY", "STRIPE_PUBLISHABLE_KEY")
    )
    paypal_client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("PAYQL_PAYPAL_CLIENT_ID", "PAYPAL_CLIENT_ID")
    )
    paypal_client_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("PAYQL_PAYPAL_CLIENT_SECRET", "PAYPAL_CLIENT_SECRET")
    )

    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    idempotency_lease_seconds: float = Field(default=30.0, gt=0)
    payment_rate_limit: str = "60/minute"
    graphql_max_depth: int = Field(default=12, ge=2)
    graphql_max_aliases: int = Field(default=15, ge=1)
    graphql_max_tokens: int = Field(default=2000, ge=50)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> Self:
        if self.environment is not Environment.PRODUCTION:
            return self
        problems: list[str] = []
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if self.jwt_jwks_url is None and (secret is None or secret == DEV_JWT_SECRET or len(secret) < 32):
            problems.append("PAYQL_JWT_SECRET: set a random secret of 32+ characters (or PAYQL_JWT_JWKS_URL)")
        if "sandbox" in self.gateways:
            problems.append("PAYQL_GATEWAYS: the sandbox gateway is for development only")
        if self.database_url.startswith("sqlite"):
            problems.append("PAYQL_DATABASE_URL: production needs PostgreSQL")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("cors_origins", "gateways", "sandbox_webhook_secrets", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION


def load_settings() -> Settings:
    """Read the environment once; turn validation errors into one message per variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            variable = f"PAYQL_{field.upper()}" if field != "settings" else "PAYQL_* settings"
            lines.append(f"{variable}: {error['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
