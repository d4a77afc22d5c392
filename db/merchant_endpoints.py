"""The merchant's webhook endpoints: registering, changing, disabling, removing them and rolling their
signing secrets, each with an audit record in the same transaction.

A secret is generated here and returned once, to the caller who created or rolled it; afterwards it
exists only sealed in its row. Rolling keeps the previous secret signing for an overlap window, so a
receiver can switch secrets without refusing a request. The URL is checked by the caller (the use
case, against the SSRF policy) before it reaches this module. Never here: a secret in an audit record
or a log line.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from db.audit_trail import record_audit
from db.merchant_events import ALL_TYPES, EVENT_TYPES
from db.merchant_models import MerchantEndpoint
from db.transitions import Actor
from db.unit_of_work import UnitOfWork, unit_of_work
from payql.webhook_signing import generate_secret

ENTITY = "merchant_endpoint"


class UnknownEventType(ValueError):
    """An event type that PayQL does not send."""


def normalize_event_types(event_types: list[str]) -> list[str]:
    """Deduplicated and checked; an empty list or one holding "*" means every type."""
    cleaned = list(dict.fromkeys(t.strip() for t in event_types))
    if not cleaned or ALL_TYPES in cleaned:
        return [ALL_TYPES]
    unknown = [t for t in cleaned if t not in EVENT_TYPES]
    if unknown:
        raise UnknownEventType(f"unknown event types: {', '.join(unknown)}")
    return cleaned


def live_secrets(endpoint: MerchantEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a request now: the current one, then the previous one during its overlap."""
    found = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        found.append(endpoint.previous_secret)
    return found


async def lock_endpoint(endpoint_id: UUID, uow: UnitOfWork, *, deleting: bool = False) -> MerchantEndpoint | None:
    """Lock an endpoint row, before any of its deliveries. Only a delete takes the key lock, which
    waits for transactions still writing deliveries for it."""
    query = MerchantEndpoint.filter(id=endpoint_id).using_db(uow.connection)
    return await query.select_for_update(no_key=not deleting).first()


async def create_endpoint(
    url: str, description: str, event_types: list[str], actor: Actor
) -> tuple[MerchantEndpoint, str]:
    """A new enabled endpoint and its signing secret (the only time the secret is returned)."""
    secret = generate_secret()
    async with unit_of_work() as uow:
        endpoint = await MerchantEndpoint.create(
            url=url,
            description=description,
            event_types=normalize_event_types(event_types),
            secret=secret,
            using_db=uow.connection,
        )
        _audit(actor, "created", endpoint, None, uow)
    return endpoint, secret


async def update_endpoint(
    endpoint_id: UUID,
    actor: Actor,
    *,
    url: str | None = None,
    description: str | None = None,
    event_types: list[str] | None = None,
    enabled: bool | None = None,
    disabled_reason: str | None = None,
) -> MerchantEndpoint | None:
    """Change what is given; None when the endpoint does not exist. Enabling clears the failure streak."""
    async with unit_of_work() as uow:
        endpoint = await lock_endpoint(endpoint_id, uow)
        if endpoint is None:
            return None
        before = _state(endpoint)
        changes: dict[str, Any] = {}
        if url is not None:
            changes["url"] = url
        if description is not None:
            changes["description"] = description
        if event_types is not None:
            changes["event_types"] = normalize_event_types(event_types)
        if enabled is not None and enabled != endpoint.enabled:
            changes["enabled"] = enabled
            changes["disabled_reason"] = None if enabled else (disabled_reason or "disabled by staff")[:500]
            changes["failing_since"] = None
        if not changes:
            return endpoint
        for name, value in changes.items():
            setattr(endpoint, name, value)
        await endpoint.save(using_db=uow.connection, update_fields=[*changes, "updated_at"])
        verb = ("enabled" if changes["enabled"] else "disabled") if "enabled" in changes else "updated"
        _audit(actor, verb, endpoint, before, uow)
    return endpoint


async def roll_secret(endpoint_id: UUID, overlap: timedelta, actor: Actor) -> tuple[MerchantEndpoint, str] | None:
    """A new secret signs from now on; the current one keeps signing too until `overlap` has passed.
    A roll during an overlap ends the older secret's window at once."""
    secret = generate_secret()
    async with unit_of_work() as uow:
        endpoint = await lock_endpoint(endpoint_id, uow)
        if endpoint is None:
            return None
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = datetime.now(UTC) + overlap
        endpoint.secret = secret
        await endpoint.save(
            using_db=uow.connection,
            update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"],
        )
        _audit(actor, "secret_rolled", endpoint, None, uow, {"overlap_seconds": int(overlap.total_seconds())})
    return endpoint, secret


async def delete_endpoint(endpoint_id: UUID, actor: Actor) -> bool:
    """Remove the endpoint with its deliveries and attempts; the audit trail keeps the record of it."""
    async with unit_of_work() as uow:
        endpoint = await lock_endpoint(endpoint_id, uow, deleting=True)
        if endpoint is None:
            return False
        _audit(actor, "deleted", endpoint, None, uow)
        await endpoint.delete(using_db=uow.connection)
    return True


async def auto_disable(endpoint_id: UUID, reason: str, actor: Actor, uow: UnitOfWork) -> MerchantEndpoint | None:
    """Disable a locked, still enabled endpoint that has failed too long; None if nothing changed."""
    endpoint = await lock_endpoint(endpoint_id, uow)
    if endpoint is None or not endpoint.enabled:
        return None
    endpoint.enabled = False
    endpoint.disabled_reason = reason[:500]
    await endpoint.save(using_db=uow.connection, update_fields=["enabled", "disabled_reason", "updated_at"])
    _audit(actor, "disabled", endpoint, None, uow)
    return endpoint


async def record_test_sent(actor: Actor, endpoint: MerchantEndpoint, event_id: str, uow: UnitOfWork) -> None:
    _audit(actor, "test_sent", endpoint, None, uow, {"event_id": event_id})


def _state(endpoint: MerchantEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types or []),
        "enabled": endpoint.enabled,
    }


def _audit(
    actor: Actor,
    verb: str,
    endpoint: MerchantEndpoint,
    before: dict[str, Any] | None,
    uow: UnitOfWork,
    extra: dict[str, Any] | None = None,
) -> None:
    record_audit(
        actor,
        f"{ENTITY}.{verb}",
        ENTITY,
        endpoint.id,
        before="ENABLED" if before is None or before["enabled"] else "DISABLED",
        after="ENABLED" if endpoint.enabled else "DISABLED",
        amount=None,
        currency=None,
        uow=uow,
        reason=actor.reason or (endpoint.disabled_reason or "" if verb == "disabled" else ""),
        data={"after": _state(endpoint), **({"before": before} if before else {}), **(extra or {})},
    )
