"""Settings from environment variables (pydantic-settings), validated once at start-up.

Every variable is named `PAYQL_<FIELD>`; each gateway package's settings class (`gateways/<name>/settings.py`)
reads its own `PAYQL_<NAME>_*` variables (a few credentials also accept the vendor's usual name) and is
loaded from here. A bad value fails start-up with a message naming the variable; production refuses to
start with development secrets or a development-only gateway. Nothing else in PayQL reads the environment.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from limits import parse as parse_limit
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from db.encryption import DataKeyError, decode_key
from gateways import catalog
from gateways.package import GatewaySettings, settings_problems
from gateways.routing import RoutingTable
from payql.redis_pool import sentinel_address

# Development defaults of earlier versions, public in the repository: refused everywhere (a gateway
# package refuses its own, `GatewaySettings.published_secret_problems`).
PUBLISHED_SECRETS = frozenset({"payql-development-only-jwt-secret-change-me"})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class SettingsError(RuntimeError):
    """Raised at start-up; the message names each offending environment variable."""


# Comma-separated in the environment: "https://a.example,https://b.example".
CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYQL_", extra="ignore", frozen=True, populate_by_name=True)

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite://data/payql.sqlite3"
    redis_url: str | None = None
    redis_key_prefix: str = "payql:"
    # Each process's one Redis pool (rate limits, live slots, publishes): at most this many
    # connections; a command waits up to the timeout for one, then is answered RATE_LIMITED.
    redis_max_connections: int = Field(default=50, ge=2, le=10_000)
    redis_pool_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # Load shedding: past this many HTTP requests in flight on /graphql, a new one is answered 503
    # with Retry-After at once instead of queueing (health checks and webhooks are not counted).
    max_in_flight_requests: int = Field(default=256, ge=1)
    # Subscribers of one live stream whose unread updates pass this are dropped with an error.
    live_update_queue_size: int = Field(default=64, ge=1, le=10_000)

    host: str = "127.0.0.1"
    # Addresses or networks of the reverse proxies in front of PayQL ("10.0.0.0/8,127.0.0.1"). Only a
    # request from one of them has its X-Forwarded-For/-Proto believed: the client address that the
    # per-IP limits count and the audit trail and dispute evidence record is the shopper's, not the
    # balancer's. Empty (the default): every X-Forwarded-For is ignored.
    trusted_proxies: CsvList = Field(default_factory=list)
    port: int = Field(default=8000, ge=1, le=65535)
    public_base_url: str = "http://127.0.0.1:8000"
    cors_origins: CsvList = Field(default_factory=lambda: ["http://localhost:5173", "http://127.0.0.1:5173"])

    # Unset in development: payql/installation_secrets.py makes one per installation.
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    # The gateways enabled: packages (`gateways/<name>/`), or instances "<package>_<suffix>" of a package that
    # allows several (see `gateways.catalog`); each reads its own PAYQL_<NAME>_* variables.
    gateways: CsvList = Field(default_factory=lambda: [catalog.DEVELOPMENT_DEFAULT])
    # Gateways to try per currency when the shopper names none: "USD:stripe,paypal;EUR:paypal;*:sandbox"
    # (empty: the enabled gateways in PAYQL_GATEWAYS order, for every currency).
    routing: str = ""
    # The circuit breaker per gateway: it opens after this many failures in a row, or at this failure rate
    # over the last `circuit_window` calls (at least `circuit_minimum_calls`); a call slower than
    # `circuit_slow_call_seconds` counts as failed; after `circuit_open_seconds` one probe may close it.
    circuit_consecutive_failures: int = Field(default=5, ge=1)
    circuit_failure_rate: float = Field(default=0.5, gt=0, le=1)
    circuit_window: int = Field(default=20, ge=1)
    circuit_minimum_calls: int = Field(default=10, ge=1)
    circuit_open_seconds: float = Field(default=30.0, gt=0)
    circuit_slow_call_seconds: float = Field(default=10.0, gt=0)
    # With Redis, instances exchange circuits this often (0: each keeps its own).
    circuit_sync_seconds: float = Field(default=1.0, ge=0)
    # A charge, capture, void or refund whose gateway is unreachable or whose outcome is unknown is retried
    # with the same idempotency key: at most this many calls, exponential backoff with jitter.
    gateway_retry_attempts: int = Field(default=3, ge=1)
    gateway_retry_base_seconds: float = Field(default=0.2, ge=0)
    gateway_retry_max_seconds: float = Field(default=2.0, ge=0)
    # The gateway work of one GraphQL request (its calls and retries) ends by then: past it the answer is
    # GATEWAY_UNAVAILABLE with the payment in flight, settled in the background.
    gateway_request_deadline_seconds: float = Field(default=10.0, gt=0)
    # Our own bound on one gateway call, whatever the SDK's (0: the SDK's only); past it the outcome is
    # unknown. A listing of the gateway's records is not bounded by it.
    gateway_call_timeout_seconds: float = Field(default=8.0, ge=0)
    # Bulkhead: calls in flight to one gateway in one process (0: no bound); one more is refused unsent,
    # and a routed payment fails over to the next gateway.
    gateway_max_concurrent_calls: int = Field(default=64, ge=0)
    # Every package's settings by name, loaded by `_load_gateway_settings` from the package's own variables;
    # code may pass {name: {field: value}} (or a package's settings object) instead.
    gateway_settings: dict[str, Any] = Field(default_factory=dict)
    # Where development keeps the secrets it makes per installation (JWT, gateway webhook secrets); 0600.
    development_secrets_path: Path = Path("data/development-secrets.json")

    # Jobs: "in-process" (embedded default) or "redis" (saq; `payql worker` consumes).
    job_queue: Literal["in-process", "redis"] | None = None
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    # How long one processing attempt holds a gateway's event: the processing job times out at it, and an
    # event claimed by a process that died waits that long before the sweeper gives it to another.
    webhook_lease_seconds: float = Field(default=120.0, ge=2)
    sweep_interval_seconds: float = Field(default=30.0, ge=0)
    sweep_grace_seconds: float = Field(default=30.0, ge=0)
    # `payql worker`'s sweep of the job queue itself (not the database sweeper above): a job that a dead
    # worker held goes back to the queue on the second sweep that finds it.
    worker_sweep_seconds: int = Field(default=60, ge=1)
    # How long a running job's record may go unstamped before a sweep counts it as a dead worker's
    # (`jobs.heartbeat`): a dead worker's job waits about this and two sweeps, not its whole timeout.
    worker_job_heartbeat_seconds: int = Field(default=30, ge=1)
    reconcile_interval_seconds: float = Field(default=300.0, ge=0)
    reconcile_window_seconds: int = Field(default=2 * 24 * 3600, ge=60)
    orphan_age_seconds: int = Field(default=15 * 60, ge=0)
    order_expiry_seconds: int = Field(default=24 * 3600, ge=60)
    outbox_max_attempts: int = Field(default=8, ge=1)
    # How long a claimed email is someone's before another process may send it again: longer than one send
    # (the send job times out at half of it), short enough that a crash mid-send delays the email little.
    outbox_lease_seconds: float = Field(default=300.0, ge=2)

    # Email: SMTP in production; without PAYQL_SMTP_HOST messages land in a local mailbox folder.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    mail_sender: str = "PayQL <payments@localhost>"
    mailbox_path: Path = Path("data/mailbox")

    # cancelOrder: refund captured money (REFUND) or leave it to refundPayment (REFUSE); shipped orders.
    cancel_order_captured: Literal["REFUND", "REFUSE"] = "REFUND"
    cancel_order_after_fulfillment: bool = False

    # Dunning: days between retries of a failed renewal ("1,3,5,7"), days of access kept while past
    # due, what happens after the last retry, and the SPA page where customers update their card.
    dunning_retry_days: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [1, 3, 5, 7])
    dunning_grace_days: int = Field(default=7, ge=0)
    dunning_final_action: Literal["CANCEL", "UNPAID"] = "CANCEL"
    dunning_interval_seconds: float = Field(default=300.0, ge=0)
    billing_update_payment_url: str = ""

    # Disputes: flag (and email PAYQL_MERCHANT_EMAIL about) those without evidence due within this many days.
    dispute_warning_days: int = Field(default=3, ge=0)
    dispute_check_interval_seconds: float = Field(default=3600.0, ge=0)
    merchant_email: str | None = None

    # Outgoing webhooks to the merchant's own endpoints (`payql endpoints`): https only in production;
    # loopback and private addresses refused unless allowed; 17 attempts over about three days; an
    # endpoint failing every attempt for this many days is disabled (PAYQL_MERCHANT_EMAIL is told).
    merchant_webhooks_allow_private: bool = False
    merchant_webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    merchant_webhook_max_attempts: int = Field(default=17, ge=1)
    merchant_webhook_retry_base_seconds: float = Field(default=30.0, gt=0)
    merchant_webhook_retry_max_seconds: float = Field(default=12 * 3600.0, gt=0)
    merchant_webhook_disable_after_days: float = Field(default=5.0, gt=0)
    merchant_webhook_retention_days: float = Field(default=30.0, gt=0)

    # Crash tests only: freeze the process at this named point (see resolvers/fault_points.py).
    fault_point: str | None = None
    fault_marker_path: Path = Path("data/fault-point-reached")

    # Personal data at rest: base64 32-byte AES-256-GCM keys, comma-separated, the current one first
    # (older ones still open what they sealed until `payql keys rotate`), and the blind index key,
    # which never rotates with them. Required in production; in development each key not given
    # comes from `data_keys_file`, generated on first use.
    data_keys: SecretStr | None = None
    data_index_key: SecretStr | None = None
    data_keys_file: Path = Path("data/data-keys")

    # On shutdown: how long open requests, then the mutations still running (whose callers may be
    # gone), get to finish before they are cancelled (their transactions roll back).
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    idempotency_lease_seconds: float = Field(default=30.0, gt=0)
    payment_rate_limit: str = "60/minute"
    graphql_max_depth: int = Field(default=12, ge=2)
    graphql_max_aliases: int = Field(default=15, ge=1)
    graphql_max_tokens: int = Field(default=2000, ge=50)
    # Fields a document selects once its fragments are expanded: what the validation rules walk.
    graphql_max_fields: int = Field(default=1000, ge=10, le=10_000)
    # Fields weighted by list sizes (first/last/limit, else the default list size): what execution walks.
    graphql_max_cost: int = Field(default=50_000, ge=100, le=10_000_000)
    graphql_default_list_size: int = Field(default=10, ge=1, le=1000)
    # /graphql reads a whole body into memory; a checkout is well under 10 KiB.
    graphql_max_body_bytes: int = Field(default=256 * 1024, ge=16 * 1024, le=16 * 1024 * 1024)
    log_level: str = "INFO"
    # OpenTelemetry's own variables: tracing is off unless the collector's endpoint is set.
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "PAYQL_OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    otel_service_name: str = Field(
        default="payql", validation_alias=AliasChoices("OTEL_SERVICE_NAME", "PAYQL_OTEL_SERVICE_NAME")
    )
    # Bearer token for GET /metrics. Unset: /metrics is open in development and not served in production.
    metrics_token: SecretStr | None = None
    # `payql worker` runs the jobs, so their metrics live in its process: served on this port
    # (bound to PAYQL_HOST) when set. A port of its own, never published: the worker has no token check.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # "json": one JSON object per line (the production default); "text": readable lines (development's).
    log_format: Literal["text", "json"] | None = None

    # Abuse limits ("N/second|minute|hour|day", shared through Redis when PAYQL_REDIS_URL is set):
    # per client IP for anonymous requests and for failed authentications (a bad or expired token),
    # per principal for completePayment (each call reads the gateway), and live subscriptions per
    # principal (anonymous: per IP) across all connections and instances.
    anonymous_rate_limit: str = "300/minute"
    failed_auth_rate_limit: str = "30/minute"
    complete_payment_rate_limit: str = "30/minute"
    max_live_subscriptions: int = Field(default=20, ge=1)

    @field_validator(
        "payment_rate_limit",
        "anonymous_rate_limit",
        "failed_auth_rate_limit",
        "complete_payment_rate_limit",
    )
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        try:
            parse_limit(value)
        except ValueError:
            raise ValueError('write a limit as "30/minute" (per second, minute, hour or day)') from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _sentinel_url_syntax(cls, value: str | None) -> str | None:
        if value:
            sentinel_address(value)  # a redis+sentinel:// URL must name its sentinels and service
        return value

    @model_validator(mode="after")
    def _load_gateway_settings(self) -> Self:
        """Each package's (and each enabled instance's) settings from its own variables; an enabled one must
        have what it needs."""
        unknown = []
        for name in self.gateways:
            try:
                catalog.package_of(name)
            except catalog.UnknownGatewayPackage as error:
                unknown.append(str(error))
        if unknown:
            raise ValueError(
                f"PAYQL_GATEWAYS: unknown gateway(s) {', '.join(sorted(unknown))} "
                f"(a package among {', '.join(catalog.available())}, or an instance '<package>_<suffix>' of one "
                "that allows instances)"
            )
        if len(set(self.gateways)) != len(self.gateways):
            raise ValueError("PAYQL_GATEWAYS: a gateway is named twice")
        problems: list[str] = []
        for name in dict.fromkeys([*catalog.available(), *self.gateways]):
            settings_type = catalog.settings_type_of(name)
            given = self.gateway_settings.get(name, {})
            loaded, found = (given, []) if isinstance(given, settings_type) else settings_problems(settings_type, given)
            problems.extend(found)
            if loaded is not None:
                self.gateway_settings[name] = loaded
                if name in self.gateways:
                    problems.extend(loaded.problems_when_enabled())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _routing_table(self) -> Self:
        RoutingTable.parse(self.routing, self.gateways)
        return self

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> Self:
        if self.environment is not Environment.PRODUCTION:
            return self
        problems: list[str] = []
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if self.jwt_jwks_url is None and (secret is None or len(secret) < 32):
            problems.append("PAYQL_JWT_SECRET: set a random secret of 32+ characters (or PAYQL_JWT_JWKS_URL)")
        problems.extend(
            f"PAYQL_GATEWAYS: the {name} gateway is for development only"
            for name in self.gateways
            if catalog.package_of(name).development_only
        )
        if self.database_url.startswith("sqlite"):
            problems.append("PAYQL_DATABASE_URL: production needs PostgreSQL")
        if self.fault_point is not None:
            problems.append("PAYQL_FAULT_POINT: crash-test fault points are for development only")
        if self.smtp_host is None:
            problems.append("PAYQL_SMTP_HOST: production sends email through SMTP")
        if self.data_keys is None:
            problems.append(
                "PAYQL_DATA_KEYS: production encrypts personal data; set one or more base64 32-byte keys"
                " (comma-separated, current first; `payql keys generate` makes one)"
            )
        if self.data_index_key is None:
            problems.append(
                "PAYQL_DATA_INDEX_KEY: production needs the blind index key (a base64 32-byte key, never rotated)"
            )
        # Without Redis every instance keeps its own pub/sub, rate limits and in-process jobs, and
        # nothing says so: a status change made on one never reaches a subscriber on another.
        if not self.redis_url:
            problems.append(
                "PAYQL_REDIS_URL: production shares subscriptions, rate limits and jobs between instances through Redis"
            )
        if self.job_queue == "in-process":
            problems.append("PAYQL_JOB_QUEUE: production runs jobs from Redis with `payql worker`, not in-process")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _refuse_published_secrets(self) -> Self:
        problems: list[str] = []
        if self.jwt_secret is not None and self.jwt_secret.get_secret_value() in PUBLISHED_SECRETS:
            problems.append("PAYQL_JWT_SECRET: this value is public in PayQL's repository; unset it or set your own")
        for settings in self.gateway_settings.values():
            problems.extend(settings.published_secret_problems())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _redis_queue_needs_redis(self) -> Self:
        if self.job_queue == "redis" and not self.redis_url:
            raise ValueError("PAYQL_JOB_QUEUE=redis needs PAYQL_REDIS_URL")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network (10.0.0.0/8)") from None
        return value

    @field_validator(
        "cors_origins",
        "trusted_proxies",
        "gateways",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("data_keys", "data_index_key")
    @classmethod
    def _base64_keys(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            return None
        parts = [part for part in value.get_secret_value().split(",") if part.strip()]
        if not parts:
            raise ValueError("empty; give base64 32-byte keys or leave it unset")
        if info.field_name == "data_index_key" and len(parts) > 1:
            raise ValueError("one key only: the blind index key does not rotate")
        for position, part in enumerate(parts, start=1):
            try:
                decode_key(part)
            except DataKeyError as error:
                raise ValueError(f"key {position}: {error}") from None
        return value

    @field_validator("dunning_retry_days", mode="before")
    @classmethod
    def _comma_separated_days(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(item) for item in value.split(",") if item.strip()]
        return value

    @field_validator("dunning_retry_days")
    @classmethod
    def _whole_days(cls, value: list[int]) -> list[int]:
        if any(days < 1 for days in value):
            raise ValueError("retry intervals are whole days of at least 1")
        return value

    def gateway(self, name: str) -> GatewaySettings:
        """The settings of the gateway `name`: a package, or an enabled instance of one."""
        loaded: GatewaySettings = self.gateway_settings[name]
        return loaded

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def effective_log_format(self) -> Literal["text", "json"]:
        return self.log_format or ("json" if self.is_production else "text")

    @property
    def effective_job_queue(self) -> str:
        return self.job_queue or ("redis" if self.redis_url else "in-process")


def load_settings() -> Settings:
    """Read the environment once; turn validation errors into one message per variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            if field:
                lines.append(f"PAYQL_{field.upper()}: {message}")
            else:
                # Cross-field checks already name their variables, one problem per "; ".
                lines.extend(message.split("; "))
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
