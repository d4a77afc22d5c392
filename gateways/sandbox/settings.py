"""The sandbox's settings, `PAYQL_SANDBOX_*`: where its state lives, the secrets its webhooks are signed with,
whether it delivers them, and how fast one address may tokenize test cards. An instance ("sandbox_backup")
reads the same fields from its own `PAYQL_SANDBOX_BACKUP_*` and keeps its state in a file of its own.

Development only: production refuses the sandbox (its package is `development_only`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Final

from limits import parse as parse_limit
from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from gateways.package import GatewaySettings

# The webhook secret of earlier versions' development default, public in the repository: refused everywhere.
PUBLISHED_WEBHOOK_SECRET: Final = "whsec_payql_sandbox_development"


class SandboxSettings(GatewaySettings):
    model_config = SettingsConfigDict(env_prefix="PAYQL_SANDBOX_")

    # Unset in development: the core makes one per installation (PayQL signs nothing with a published value).
    development_secret_field: ClassVar[str | None] = "webhook_secrets"

    # Default: data/<gateway>.sqlite3, so two instances never share a state file.
    state_path: Path | None = None
    # The first signs the sandbox's deliveries; every one verifies (list several while rotating).
    webhook_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The sandbox posts its signed webhooks to our own /webhooks/sandbox, like a real processor.
    deliver_webhooks: bool = True
    # Per client address, on /sandbox/tokens (where a browser posts a test card number).
    tokenize_rate_limit: str = "30/minute"

    @model_validator(mode="before")
    @classmethod
    def _own_state_file(cls, values: Any) -> Any:
        # An explicit None (in-memory state) is kept; only an absent value gets the gateway's own file.
        if isinstance(values, dict) and "state_path" not in values:
            return {**values, "state_path": Path(f"data/{cls.instance or 'sandbox'}.sqlite3")}
        return values

    @field_validator("tokenize_rate_limit")
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        try:
            parse_limit(value)
        except ValueError:
            raise ValueError('write a limit as "30/minute" (per second, minute, hour or day)') from None
        return value

    def published_secret_problems(self) -> list[str]:
        if PUBLISHED_WEBHOOK_SECRET in self.webhook_secrets:
            variable = self.variable("webhook_secrets")
            return [f"{variable}: this value is public in PayQL's repository; unset it or set your own"]
        return []
