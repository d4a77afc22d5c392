"""The staff use cases of outgoing webhooks: register and change endpoints, roll their secrets, look at
deliveries, resend them and send a test event. Shared by GraphQL and the CLI.

Every use case is staff only and every change leaves an audit record (written by the db modules in
the same transaction). A URL is checked against the SSRF policy before it is stored, and again before
every delivery (a DNS answer can change). Bad input changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from db import merchant_deliveries, merchant_endpoints
from db.merchant_events import announce_test
from db.merchant_models import DeliveryStatus, MerchantDelivery, MerchantEndpoint
from db.transitions import Actor
from db.unit_of_work import unit_of_work
from payql.outbound_urls import OutboundPolicy, RefusedUrl, pin
from resolvers.context import Caller
from resolvers.errors import ErrorCode, UseCaseError

MAX_DELIVERIES = 200
MAX_DESCRIPTION = 500
MAX_OVERLAP = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class EndpointChange:
    url: str | None = None
    description: str | None = None
    event_types: list[str] | None = None
    enabled: bool | None = None


def _uuid(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise UseCaseError(ErrorCode.NOT_FOUND, "No such endpoint.", field) from None


async def _checked_url(url: str, policy: OutboundPolicy) -> str:
    cleaned = url.strip()
    try:
        await pin(cleaned, policy)
    except RefusedUrl as refused:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"This URL cannot receive webhooks: {refused}.", "url") from None
    return cleaned


def _description(text: str | None) -> str | None:
    if text is not None and len(text) > MAX_DESCRIPTION:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"At most {MAX_DESCRIPTION} characters.", "description")
    return text


def _types(event_types: list[str] | None) -> list[str] | None:
    if event_types is None:
        return None
    try:
        return merchant_endpoints.normalize_event_types(event_types)
    except merchant_endpoints.UnknownEventType as error:
        raise UseCaseError(ErrorCode.INVALID_INPUT, str(error), "eventTypes") from None


async def list_endpoints(caller: Caller) -> list[MerchantEndpoint]:
    caller.require_admin()
    return await MerchantEndpoint.all().order_by("created_at")


async def create_endpoint(
    caller: Caller, policy: OutboundPolicy, url: str, description: str, event_types: list[str]
) -> tuple[MerchantEndpoint, str]:
    caller.require_admin()
    checked = await _checked_url(url, policy)
    types = _types(event_types) or []
    return await merchant_endpoints.create_endpoint(checked, _description(description) or "", types, caller.actor())


async def update_endpoint(
    caller: Caller, policy: OutboundPolicy, endpoint_id: str, change: EndpointChange
) -> MerchantEndpoint:
    caller.require_admin()
    url = await _checked_url(change.url, policy) if change.url is not None else None
    endpoint = await merchant_endpoints.update_endpoint(
        _uuid(endpoint_id, "id"),
        caller.actor(),
        url=url,
        description=_description(change.description),
        event_types=_types(change.event_types),
        enabled=change.enabled,
    )
    if endpoint is None:
        raise UseCaseError(ErrorCode.NOT_FOUND, "No such endpoint.", "id")
    return endpoint


async def delete_endpoint(caller: Caller, endpoint_id: str) -> None:
    caller.require_admin()
    if not await merchant_endpoints.delete_endpoint(_uuid(endpoint_id, "id"), caller.actor()):
        raise UseCaseError(ErrorCode.NOT_FOUND, "No such endpoint.", "id")


async def roll_secret(caller: Caller, endpoint_id: str, overlap: timedelta) -> tuple[MerchantEndpoint, str]:
    caller.require_admin()
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise UseCaseError(ErrorCode.INVALID_INPUT, "The overlap is 0 to 7 days.", "overlapSeconds")
    rolled = await merchant_endpoints.roll_secret(_uuid(endpoint_id, "id"), overlap, caller.actor())
    if rolled is None:
        raise UseCaseError(ErrorCode.NOT_FOUND, "No such endpoint.", "id")
    return rolled


async def list_deliveries(
    caller: Caller,
    *,
    endpoint_id: str | None = None,
    event_id: str | None = None,
    status: DeliveryStatus | None = None,
    first: int = 50,
) -> list[MerchantDelivery]:
    """Newest first; `event_id` is the envelope's id (evt_…)."""
    caller.require_admin()
    if not 1 <= first <= MAX_DELIVERIES:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"first must be 1 to {MAX_DELIVERIES}.", "first")
    query = MerchantDelivery.all()
    if endpoint_id is not None:
        query = query.filter(endpoint_id=_uuid(endpoint_id, "endpointId"))
    if event_id is not None:
        query = query.filter(event__public_id=event_id)
    if status is not None:
        query = query.filter(status=status)
    return await query.order_by("-id").limit(first).prefetch_related("event")


async def resend_delivery(caller: Caller, delivery_id: str) -> MerchantDelivery:
    caller.require_admin()
    try:
        row_id = int(delivery_id)
    except ValueError:
        row_id = 0
    delivery = await merchant_deliveries.resend(row_id, caller.actor()) if row_id > 0 else None
    if delivery is None:
        raise UseCaseError(ErrorCode.NOT_FOUND, "No such delivery.", "id")
    return delivery


async def resend_failed_since(caller: Caller, since: datetime, endpoint_id: str | None = None) -> int:
    caller.require_admin()
    endpoint = _uuid(endpoint_id, "endpointId") if endpoint_id is not None else None
    return await merchant_deliveries.resend_failed_since(since, caller.actor(), endpoint)


async def send_test_event(caller: Caller, endpoint_id: str) -> MerchantDelivery:
    caller.require_admin()
    return await send_test_event_as(caller.actor(), _uuid(endpoint_id, "endpointId"))


async def send_test_event_as(actor: Actor, endpoint_id: UUID) -> MerchantDelivery:
    async with unit_of_work() as uow:
        endpoint = await merchant_endpoints.lock_endpoint(endpoint_id, uow)
        if endpoint is None:
            raise UseCaseError(ErrorCode.NOT_FOUND, "No such endpoint.", "endpointId")
        if not endpoint.enabled:
            raise UseCaseError(ErrorCode.INVALID_STATE, "The endpoint is disabled.", "endpointId")
        event = await announce_test(uow, endpoint)
        await merchant_endpoints.record_test_sent(actor, endpoint, event.public_id, uow)
    return await MerchantDelivery.get(event_id=event.id, endpoint_id=endpoint.id).prefetch_related("event")
