"""The email telling the merchant (PAYQL_MERCHANT_EMAIL) that a webhook endpoint was disabled after
failing for days. Registered in `notifications.templates`; it never repeats the endpoint's secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from db.merchant_models import MerchantEndpoint
from notifications.templates import Email, Undeliverable, template


@template("merchant_endpoint_disabled")
async def endpoint_disabled(payload: Mapping[str, Any]) -> Email:
    """Payload {endpoint_id, to, reason}."""
    to = str(payload.get("to") or "")
    if not to:
        raise Undeliverable("no merchant address")
    try:
        endpoint = await MerchantEndpoint.get_or_none(id=UUID(str(payload["endpoint_id"])))
    except (KeyError, ValueError) as exc:
        raise Undeliverable("payload needs a valid 'endpoint_id'") from exc
    if endpoint is None:
        raise Undeliverable("the endpoint was removed")
    text = (
        f"PayQL disabled the webhook endpoint {endpoint.url} ({endpoint.description or 'no description'}): "
        f"{payload.get('reason', 'it kept failing')}.\n\n"
        "Events are no longer sent to it. Fix the receiver, enable the endpoint again "
        "(`payql endpoints enable` or the updateMerchantEndpoint mutation), then resend what failed "
        "(`payql endpoints resend-failed --since ...`)."
    )
    return Email(to=to, subject="A webhook endpoint was disabled", text=text)
