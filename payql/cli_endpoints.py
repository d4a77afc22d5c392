"""`payql endpoints …`: the merchant's webhook endpoints and their deliveries, from the command line.

The same use cases as the staff GraphQL fields, run as the staff actor `admin:cli`, so every change
leaves the same audit record. A secret is printed once, when created or rolled. Commands that send
(resend, test) make the attempt in this process and print its outcome; later retries, and the
deliveries `resend-failed` queues, belong to the server's jobs, which the sweeper feeds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import typer

from payql.cli import _settings, _with_services

if TYPE_CHECKING:
    from db.merchant_models import MerchantDelivery, MerchantEndpoint
    from payql.wiring import Services
    from resolvers.context import Caller

T = TypeVar("T")

endpoints_app = typer.Typer(help="Webhook endpoints of the merchant's own systems.", no_args_is_help=True)


def _staff() -> Caller:
    from resolvers.context import Caller, Principal

    return Caller(Principal(subject="cli", is_admin=True))


def _run(work: Callable[[Services], Awaitable[T]]) -> T:
    """Run a use case; a refusal (bad input, unknown id) is printed and exits with status 2.

    This process queues no delivery job after a commit: such a job would run in a queue that closes
    with the command, mid-send. `resend` and `test` send here and now; the rest is the server's
    sweeper's, which finds every pending delivery.
    """
    from db.unit_of_work import add_change_listener, remove_change_listener
    from resolvers.errors import UseCaseError

    async def without_jobs(services: Services) -> T:
        remove_change_listener(services.after_commit)
        try:
            return await work(services)
        finally:
            add_change_listener(services.after_commit)

    try:
        return asyncio.run(_with_services(_settings(), without_jobs))
    except UseCaseError as error:
        typer.echo(f"{error.code}: {error.message}", err=True)
        raise typer.Exit(2) from None


def _show(endpoint: MerchantEndpoint) -> str:
    state = "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason or ''})"
    return f"{endpoint.id}\t{endpoint.url}\t{','.join(endpoint.event_types or [])}\t{state}\t{endpoint.description}"


def _show_delivery(delivery: MerchantDelivery) -> str:
    code = delivery.last_status_code if delivery.last_status_code is not None else "-"
    return (
        f"{delivery.id}\t{delivery.event.public_id}\t{delivery.event.type}\t{delivery.endpoint_id}\t"
        f"{delivery.status}\tattempts={delivery.attempts}\tlast={code}\t{(delivery.last_error or '')[:120]}"
    )


@endpoints_app.command("list")
def list_command() -> None:
    """List endpoints (never their secrets)."""
    from resolvers import merchant_webhooks

    for endpoint in _run(lambda _: merchant_webhooks.list_endpoints(_staff())):
        typer.echo(_show(endpoint))


@endpoints_app.command("create")
def create_command(
    url: str = typer.Option(..., help="Where events are POSTed."),
    events: str = typer.Option("*", help="Comma-separated event types, or * for all."),
    description: str = typer.Option("", help="What this endpoint is."),
) -> None:
    """Register an endpoint and print its signing secret (shown this once)."""
    from resolvers import merchant_webhooks

    types = [t for t in events.split(",") if t.strip()]
    endpoint, secret = _run(
        lambda services: merchant_webhooks.create_endpoint(_staff(), services.deps.outbound, url, description, types)
    )
    typer.echo(_show(endpoint))
    typer.echo(f"signing secret (shown once): {secret}")


def _update(endpoint_id: str, change_kwargs: dict[str, object]) -> None:
    from resolvers import merchant_webhooks

    change = merchant_webhooks.EndpointChange(**change_kwargs)  # type: ignore[arg-type]
    endpoint = _run(
        lambda services: merchant_webhooks.update_endpoint(_staff(), services.deps.outbound, endpoint_id, change)
    )
    typer.echo(_show(endpoint))


@endpoints_app.command("update")
def update_command(
    endpoint_id: str,
    url: str | None = typer.Option(None),
    events: str | None = typer.Option(None, help="Comma-separated event types, or * for all."),
    description: str | None = typer.Option(None),
) -> None:
    """Change an endpoint's URL, event types or description."""
    types = [t for t in events.split(",") if t.strip()] if events is not None else None
    _update(endpoint_id, {"url": url, "event_types": types, "description": description})


@endpoints_app.command("enable")
def enable_command(endpoint_id: str) -> None:
    """Send to this endpoint again (what failed meanwhile: `resend-failed`)."""
    _update(endpoint_id, {"enabled": True})


@endpoints_app.command("disable")
def disable_command(endpoint_id: str) -> None:
    """Stop sending to this endpoint."""
    _update(endpoint_id, {"enabled": False})


@endpoints_app.command("delete")
def delete_command(endpoint_id: str) -> None:
    """Remove an endpoint with its delivery history (the audit trail keeps its record)."""
    from resolvers import merchant_webhooks

    _run(lambda _: merchant_webhooks.delete_endpoint(_staff(), endpoint_id))
    typer.echo(f"{endpoint_id}\tdeleted")


@endpoints_app.command("roll-secret")
def roll_secret_command(
    endpoint_id: str,
    overlap_hours: float = typer.Option(24.0, help="How long the old secret keeps signing too."),
) -> None:
    """Print a new signing secret (shown once); the old one signs too during the overlap."""
    from resolvers import merchant_webhooks

    overlap = timedelta(hours=overlap_hours)
    endpoint, secret = _run(lambda _: merchant_webhooks.roll_secret(_staff(), endpoint_id, overlap))
    typer.echo(_show(endpoint))
    typer.echo(f"new signing secret (shown once): {secret}")


@endpoints_app.command("deliveries")
def deliveries_command(
    endpoint: str | None = typer.Option(None, help="Only this endpoint's."),
    event: str | None = typer.Option(None, help="Only this event's (evt_…)."),
    status: str | None = typer.Option(None, help="PENDING, FAILED, DELIVERED or DEAD."),
    limit: int = typer.Option(50, help="How many, newest first."),
) -> None:
    """List deliveries, newest first."""
    from db.merchant_models import DeliveryStatus
    from resolvers import merchant_webhooks

    wanted = DeliveryStatus(status.upper()) if status else None
    rows = _run(
        lambda _: merchant_webhooks.list_deliveries(
            _staff(), endpoint_id=endpoint, event_id=event, status=wanted, first=limit
        )
    )
    for row in rows:
        typer.echo(_show_delivery(row))


async def _attempt_now(services: Services, delivery: MerchantDelivery) -> MerchantDelivery:
    from db.merchant_models import MerchantDelivery
    from jobs.merchant_delivery import deliver

    if services.jobs.merchant_webhooks is not None:
        await deliver(delivery.id, services.jobs.merchant_webhooks)
    return await MerchantDelivery.get(id=delivery.id).prefetch_related("event")


@endpoints_app.command("resend")
def resend_command(delivery_id: str) -> None:
    """Send one delivery again now, from a fresh attempt count."""
    from resolvers import merchant_webhooks

    async def run(services: Services) -> MerchantDelivery:
        return await _attempt_now(services, await merchant_webhooks.resend_delivery(_staff(), delivery_id))

    typer.echo(_show_delivery(_run(run)))


@endpoints_app.command("resend-failed")
def resend_failed_command(
    since: datetime = typer.Option(..., help="Failed and dead deliveries created since (ISO 8601)."),
    endpoint: str | None = typer.Option(None, help="Only this endpoint's."),
) -> None:
    """Queue every failed or dead delivery since a time again; the server's jobs send them."""
    from resolvers import merchant_webhooks

    count = _run(lambda _: merchant_webhooks.resend_failed_since(_staff(), since, endpoint))
    typer.echo(f"{count} deliveries queued again")


@endpoints_app.command("test")
def test_command(endpoint_id: str) -> None:
    """Send a test event (endpoint.test) to an endpoint now and print the outcome."""
    from resolvers import merchant_webhooks

    async def run(services: Services) -> MerchantDelivery:
        return await _attempt_now(services, await merchant_webhooks.send_test_event(_staff(), endpoint_id))

    typer.echo(_show_delivery(_run(run)))
