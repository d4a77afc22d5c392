"""The `payql` command: serve, migrate, seed-demo, keys, webhooks, reconcile, audit and (development
only) token."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
import uvicorn

from payql.served_address import advertised_url
from payql.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from collections import Counter

    from db.encryption import DataKeys
    from db.ledger import LedgerMismatch
    from db.models import WebhookEvent
    from db.reseal import ColumnReport
    from jobs.reconcile import ReconciliationReport
    from payql.wiring import Services

T = TypeVar("T")

app = typer.Typer(help="PayQL: a self-hosted GraphQL payment API server.", no_args_is_help=True)


def _settings() -> Settings:
    """The environment's settings; in development, missing secrets come from this installation's file."""
    from payql.installation_secrets import with_installation_secrets

    try:
        return with_installation_secrets(load_settings())
    except SettingsError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


def _data_keys(settings: Settings) -> DataKeys:
    from db.encryption import DataKeyError
    from payql.data_keys import load_data_keys

    try:
        return load_data_keys(settings)
    except (SettingsError, DataKeyError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


def _ensure_data_folder(settings: Settings) -> None:
    for url_path in (
        (settings.database_url.removeprefix("sqlite://"),) if settings.database_url.startswith("sqlite://") else ()
    ):
        if url_path != ":memory:":
            Path(url_path).parent.mkdir(parents=True, exist_ok=True)


@app.command()
def serve(
    host: str | None = None,
    port: int | None = None,
    workers: int = typer.Option(1, min=1, help="Worker processes on this port; /metrics sums them all."),
) -> None:
    """Serve the API (GraphQL at /graphql)."""
    settings = _settings()
    _ensure_data_folder(settings)
    served_host, served_port = host or settings.host, port or settings.port
    options = {
        "host": served_host,
        "port": served_port,
        # The app decides whom to believe (PAYQL_TRUSTED_PROXIES); uvicorn's own default trusts 127.0.0.1.
        "proxy_headers": False,
        "log_config": None,
        # Open requests get the shutdown grace, then uvicorn cancels them (0 would mean forever).
        "timeout_graceful_shutdown": max(1, round(settings.shutdown_grace_seconds)),
    }
    advertised = advertised_url(settings, served_host, served_port)
    if advertised.warning:
        logging.getLogger("payql").warning(advertised.warning)
    # Through the environment too: `--workers` processes build their apps from it.
    os.environ["PAYQL_PUBLIC_BASE_URL"] = advertised.public_base_url
    settings = settings.model_copy(update={"public_base_url": advertised.public_base_url})
    if workers > 1:
        _share_metrics_between_processes()
        _warn_if_development(settings, str(options["host"]))
        # Each worker process builds its own app from the same environment.
        uvicorn.run("payql.app:app_from_environment", factory=True, workers=workers, **options)  # type: ignore[arg-type]
        return
    from payql.app import create_app

    app = create_app(settings)
    _warn_if_development(settings, str(options["host"]))
    uvicorn.run(app, **options)  # type: ignore[arg-type]


def _share_metrics_between_processes() -> None:
    """prometheus-client's multiprocess mode: every worker writes its samples to files in one
    folder, which must exist, empty, before any of them imports the metrics."""
    import tempfile

    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="payql-metrics-")


def _warn_if_development(settings: Settings, host: str) -> None:
    """Say loudly, at every start, that this server is not fit to face the internet."""
    if settings.is_production:
        return
    logger = logging.getLogger("payql")
    logger.warning(
        "DEVELOPMENT MODE (PAYQL_ENVIRONMENT=production is not set): development gateways and their routes are on, "
        "tokens are signed with the development secret in %s unless PAYQL_JWT_SECRET is set, and "
        "`payql token` mints admin tokens with it. Never deploy like this.",
        settings.development_secrets_path,
    )
    if not _is_loopback(host):
        logger.warning(
            "DEVELOPMENT MODE ON A NON-LOOPBACK ADDRESS (%s): anyone who can reach this port reaches a development "
            "server. Listen on 127.0.0.1 or set PAYQL_ENVIRONMENT=production.",
            host,
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def migrate() -> None:
    """Apply every pending database migration."""
    settings = _settings()
    _ensure_data_folder(settings)
    from db.migrate import apply_migrations

    asyncio.run(apply_migrations(settings.database_url))
    typer.echo("database is up to date")


@app.command("seed-demo")
def seed_demo() -> None:
    """Create a small demo catalog in USD, EUR and JPY (safe to run again)."""
    settings = _settings()
    from db.config import close_database, open_database
    from db.seed_demo import seed_demo_catalog

    data_keys = _data_keys(settings)

    async def run() -> int:
        await open_database(settings.database_url, data_keys)
        try:
            return await seed_demo_catalog()
        finally:
            await close_database()

    typer.echo(f"demo catalog ready ({asyncio.run(run())} prices created)")


async def _with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """Open the database and the services without serving jobs or webhooks, run `work`, close."""
    from db.config import close_database, open_database
    from payql.wiring import build_services, prepare_gateways

    await open_database(settings.database_url, _data_keys(settings))
    try:
        # A CLI command must not deliver webhooks or run other background work.
        services = await build_services(settings, prepare_gateways(settings, background=False), serve_jobs=False)
        try:
            return await work(services)
        finally:
            await services.aclose()
    finally:
        await close_database()


@app.command()
def worker(
    check: bool = typer.Option(
        False, "--check", help="Exit 0 if this host's worker wrote its heartbeat in the last seconds (health check)."
    ),
) -> None:
    """Run background jobs from Redis (production): webhook processing, outbox, sweeper, reconciliation,
    dunning and dispute deadlines, on the schedule the PAYQL_*_INTERVAL_SECONDS settings give."""
    settings = _settings()
    if not settings.redis_url:
        typer.echo("payql worker needs PAYQL_REDIS_URL; the embedded default runs jobs inside `payql serve`", err=True)
        raise typer.Exit(2)
    from jobs.schedule import cron_entries
    from jobs.worker import default_worker_id, run_worker, worker_is_alive
    from payql.logging_setup import configure_logging
    from payql.wiring import periodic_intervals

    queue_name = f"{settings.redis_key_prefix}jobs"
    if check:
        alive = asyncio.run(worker_is_alive(settings.redis_url, name=queue_name, worker_id=default_worker_id()))
        typer.echo("worker is alive" if alive else "no heartbeat from this host's worker", err=not alive)
        raise typer.Exit(0 if alive else 1)
    configure_logging(settings.log_level, settings.effective_log_format)
    from payql.telemetry import configure_tracing

    configure_tracing(settings.otel_exporter_otlp_endpoint, settings.otel_service_name)
    if settings.worker_metrics_port is not None:
        from payql.metrics import serve_metrics_in_background

        serve_metrics_in_background(settings.host, settings.worker_metrics_port)

    async def run(services: Services) -> None:
        await run_worker(
            settings.redis_url or "",
            services.job_specs,
            cron=cron_entries(periodic_intervals(settings)),
            name=queue_name,
            worker_id=default_worker_id(),
            sweep_seconds=settings.worker_sweep_seconds,
            heartbeat_seconds=settings.worker_job_heartbeat_seconds,
        )

    asyncio.run(_with_services(settings, run))


@app.command()
def healthcheck(
    timeout: float = typer.Option(3.0, help="Seconds to wait for /readyz."),
) -> None:
    """Container health check for either role: exit 0 if this host's worker wrote its heartbeat, or
    if the server on PAYQL_PORT answers /readyz with 200; else 1."""
    settings = _settings()
    if settings.redis_url:
        from jobs.worker import default_worker_id, worker_is_alive

        queue_name = f"{settings.redis_key_prefix}jobs"
        try:
            if asyncio.run(worker_is_alive(settings.redis_url, name=queue_name, worker_id=default_worker_id())):
                typer.echo("worker is alive")
                return
        except Exception as error:  # Redis down: the server's /readyz says so too
            typer.echo(f"no worker heartbeat: {error}", err=True)
    import httpx

    try:
        status = httpx.get(f"http://127.0.0.1:{settings.port}/readyz", timeout=timeout).status_code
    except httpx.HTTPError as error:
        typer.echo(f"not ready: {error}", err=True)
        raise typer.Exit(1) from None
    if status != 200:
        typer.echo(f"not ready: /readyz answered {status}", err=True)
        raise typer.Exit(1)
    typer.echo("server is ready")


webhooks_app = typer.Typer(help="Look at stored webhook deliveries and replay them.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("list")
def webhooks_list(
    failed: bool = typer.Option(False, "--failed", help="Only FAILED and DEAD events."),
    limit: int = typer.Option(50, help="How many, newest first."),
) -> None:
    """List stored webhook events."""
    settings = _settings()

    async def run(_: Services) -> list[WebhookEvent]:
        from db.models import WebhookEvent, WebhookStatus

        query = WebhookEvent.all()
        if failed:
            query = query.filter(status__in=[WebhookStatus.FAILED, WebhookStatus.DEAD])
        return await query.order_by("-id").limit(limit)

    for row in asyncio.run(_with_services(settings, run)):
        error = (row.last_error or "").strip().splitlines()[-1:] or [""]
        typer.echo(
            f"{row.id}\t{row.gateway}\t{row.event_type}\t{row.event_id}\t{row.status}\t"
            f"attempts={row.attempts}\t{row.received_at:%Y-%m-%d %H:%M:%S}\t{error[0][:120]}"
        )


@webhooks_app.command("replay")
def webhooks_replay(
    event_id: int | None = typer.Argument(None, help="The stored event's id (see `payql webhooks list`)."),
    failed: bool = typer.Option(False, "--failed", help="Replay every FAILED and DEAD event."),
) -> None:
    """Process stored events again from a fresh attempt count (idempotent: applied at most once)."""
    if (event_id is None) == (not failed):
        typer.echo("give an event id or --failed", err=True)
        raise typer.Exit(2)
    settings = _settings()

    async def run(services: Services) -> list[tuple[int, str]]:
        from db.models import WebhookEvent, WebhookStatus
        from webhooks.store import reset_for_replay

        ids: list[int] = (
            [row.id for row in await WebhookEvent.filter(status__in=[WebhookStatus.FAILED, WebhookStatus.DEAD])]
            if failed
            else [event_id or 0]
        )
        results = []
        for row_id in ids:
            if not await reset_for_replay(row_id):
                results.append((row_id, "unknown event"))
                continue
            await services.jobs.process_webhook(row_id)
            row = await WebhookEvent.get(id=row_id)
            results.append((row_id, str(row.status)))
        return results

    outcomes = asyncio.run(_with_services(settings, run))
    for row_id, status in outcomes:
        typer.echo(f"{row_id}\t{status}")
    if any(status not in ("PROCESSED", "IGNORED") for _, status in outcomes):
        raise typer.Exit(1)


@app.command("reconcile")
def reconcile_command(
    since: datetime | None = typer.Option(None, help="Start of the window (ISO 8601); default: 2 days ago."),
) -> None:
    """Settle payments stuck in flight and compare ours with each gateway's records."""
    settings = _settings()
    window_start = since or datetime.now(UTC) - timedelta(seconds=settings.reconcile_window_seconds)
    if window_start.tzinfo is None:
        window_start = window_start.replace(tzinfo=UTC)

    async def run(services: Services) -> ReconciliationReport:
        from jobs.reconcile import reconcile

        return await reconcile(
            services.deps.gateways,
            since=window_start,
            orphan_age=timedelta(seconds=settings.orphan_age_seconds),
            order_expiry=timedelta(seconds=settings.order_expiry_seconds),
            billing=services.jobs.billing,
        )

    report = asyncio.run(_with_services(settings, run))
    for key, value in report.counts().items():
        typer.echo(f"{key}: {value}")
    for name in report.unlisted_gateways:
        typer.echo(f"not compared\t{name}\tits API cannot list payments: its signed events alone settle them")
    for item in report.discrepancies:
        typer.echo(
            f"discrepancy\t{item.kind}\t{item.gateway}\t{item.reference}\t{item.payment_id}\t{item.ours}\t{item.theirs}"
        )
    if report.discrepancies or report.unreachable_gateways:
        raise typer.Exit(1)


audit_app = typer.Typer(help="The append-only audit trail and ledger.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("export")
def audit_export(
    since: datetime = typer.Option(..., help="Start (ISO 8601)."),
    output: Path | None = typer.Option(None, help="CSV file to write; standard output by default."),
) -> None:
    """Write the audit trail since a moment as CSV."""
    settings = _settings()
    start = since if since.tzinfo else since.replace(tzinfo=UTC)

    async def run(_: Services) -> int:
        from resolvers.audit import export_csv

        if output is None:
            return await export_csv(start, sys.stdout)
        with output.open("w", newline="") as handle:
            return await export_csv(start, handle)

    count = asyncio.run(_with_services(settings, run))
    typer.echo(f"{count} audit records exported", err=True)


@audit_app.command("check-ledger")
def audit_check_ledger() -> None:
    """Prove that, for every payment, the ledger sums equal the stored captured, refunded and disputed amounts."""
    settings = _settings()

    async def run(_: Services) -> list[LedgerMismatch]:
        from db.ledger import ledger_mismatches

        return await ledger_mismatches()

    mismatches = asyncio.run(_with_services(settings, run))
    for item in mismatches:
        typer.echo(
            f"{item.payment_id}\tstored captured={item.stored_captured} refunded={item.stored_refunded}"
            f" disputed={item.stored_disputed}\tledger captured={item.ledger_captured}"
            f" refunded={item.ledger_refunded} disputed={item.ledger_disputed}"
        )
    typer.echo(f"{len(mismatches)} payments whose ledger does not balance")
    if mismatches:
        raise typer.Exit(1)


keys_app = typer.Typer(help="The keys that encrypt personal data at rest.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random data key (base64, 32 bytes) for PAYQL_DATA_KEYS or PAYQL_DATA_INDEX_KEY."""
    from db.encryption import generate_key

    typer.echo(generate_key())


@keys_app.command("rotate")
def keys_rotate(
    batch_size: int = typer.Option(500, min=1, help="Rows per transaction."),
) -> None:
    """Seal every personal data value with the current (first) key of PAYQL_DATA_KEYS, seal plaintext
    left from before encryption and recompute blind indexes. Safe to repeat; exits 1 if a value opens
    with no listed key (they are listed, and left untouched)."""
    settings = _settings()
    data_keys = _data_keys(settings)

    async def run() -> tuple[list[ColumnReport], dict[str, Counter[str]]]:
        from db.config import close_database, open_database
        from db.reseal import key_usage, reseal_all

        await open_database(settings.database_url, data_keys)
        try:
            return await reseal_all(data_keys, batch_size), await key_usage()
        finally:
            await close_database()

    reports, usage = asyncio.run(run())
    for report in reports:
        name = report.column.associated_data
        counts = f"{report.resealed} re-sealed, {report.reindexed} re-indexed, {len(report.unreadable)} unreadable"
        typer.echo(f"{name}: {counts}")
        for pk in report.unreadable:
            typer.echo(f"unreadable\t{name}\t{pk}", err=True)
    in_use = sorted({key for counts in usage.values() for key in counts})
    typer.echo(f"current key {data_keys.current_id}; keys in use: {', '.join(in_use) or 'none'}")
    if any(report.unreadable for report in reports):
        raise typer.Exit(1)


@app.command()
def mailbox(limit: int = 20) -> None:
    """Show the newest emails of the embedded default's local mailbox."""
    settings = _settings()
    from notifications.mailer import MailboxMailer

    messages = MailboxMailer(settings.mailbox_path).list_messages()[-limit:]
    for message in messages:
        typer.echo(f"--- {message['Date']}  to {message['To']}  {message['Subject']}")
        body = message.get_body(preferencelist=("plain",))
        typer.echo(body.get_content() if body is not None else "")


@app.command()
def token(
    sub: str = typer.Option(..., help="The customer id (JWT sub)."),
    admin: bool = False,
    email: str | None = typer.Option(None, help="Where receipts go."),
    link: bool = typer.Option(False, help="Print a staff console sign-in link instead of the bare token."),
) -> None:
    """Mint a development JWT for trying the API in GraphiQL, or a link that signs in to /console."""
    settings = _settings()
    if settings.is_production or settings.jwt_secret is None:
        typer.echo("payql token only works in development with an HS256 secret (not with PAYQL_JWT_JWKS_URL)", err=True)
        raise typer.Exit(2)
    from payql.auth import mint_token

    minted = mint_token(settings.jwt_secret.get_secret_value(), sub, admin=admin, email=email)
    # The token goes in the fragment: browsers never send it, so no server or proxy logs it.
    sys.stdout.write((f"{settings.public_base_url}/console#token={minted}" if link else minted) + "\n")


# Registered last: the endpoints commands use this module's helpers.
from payql.cli_endpoints import endpoints_app  # noqa: E402

app.add_typer(endpoints_app, name="endpoints")
