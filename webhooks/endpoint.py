"""`POST /webhooks/{gateway}`: read the raw body (bounded), verify it with the gateway's adapter,
store it once and queue its processing (`webhooks.delivery_batches`, with the deliveries that arrive
meanwhile), then answer 2xx.

A forged, stale or malformed delivery gets a 4xx and is neither stored nor applied; the reason is
logged for operators and never sent back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateways.errors import WebhookRejected
from gateways.registry import GatewayRegistry, UnknownGateway
from gateways.types import WebhookDelivery
from webhooks.delivery_batches import DeliveryBatches, StoringStopped
from webhooks.store import VerifiedDelivery

logger = logging.getLogger(__name__)

WEBHOOKS_PREFIX = "/webhooks/"
MAX_BODY_BYTES = 512 * 1024
# The two acknowledgements, by whether the delivery was new: written once, not encoded per delivery.
_ACKNOWLEDGEMENTS = {
    created: json.dumps({"received": True, "duplicate": not created}, separators=(",", ":")).encode()
    for created in (True, False)
}


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def webhook_routes(
    gateways: Callable[[], GatewayRegistry],
    deliveries: Callable[[], DeliveryBatches],
    count: Callable[[str, str], None] = lambda gateway, outcome: None,
) -> list[Route]:
    """`count(gateway, outcome)` is told each delivery's fate (the metrics): stored, duplicate,
    rejected, too_large or unknown_gateway."""

    async def receive(request: Request) -> Response:
        name = request.path_params["gateway"]
        try:
            gateway = gateways().get(name)
        except UnknownGateway:
            # Not the requested name as a label: a client could mint series with made-up names.
            count("unknown", "unknown_gateway")
            return JSONResponse({"error": "unknown gateway"}, status_code=404)
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            count(name, "too_large")
            return JSONResponse({"error": "payload too large"}, status_code=413)
        except ClientDisconnect:
            return JSONResponse({"error": "incomplete body"}, status_code=400)
        delivery = WebhookDelivery(
            headers={k.lower(): v for k, v in request.headers.items()}, body=body, received_at=int(time.time())
        )
        source_ip = request.client.host if request.client else None
        try:
            event = await gateway.verify_webhook(delivery)
        except WebhookRejected as rejected:
            logger.warning("webhook rejected for %s from %s: %s", name, source_ip, rejected.reason)
            count(name, "rejected")
            return JSONResponse({"error": "rejected"}, status_code=400)
        try:
            _, created = await deliveries().store(VerifiedDelivery(name, event, delivery, source_ip))
        except StoringStopped:
            # This process is shutting down: the gateway delivers again, to it or to another instance.
            return JSONResponse({"error": "shutting down"}, status_code=503, headers={"retry-after": "1"})
        count(name, "stored" if created else "duplicate")
        return Response(_ACKNOWLEDGEMENTS[created], media_type="application/json")

    return [Route(f"{WEBHOOKS_PREFIX}{{gateway}}", receive, methods=["POST"])]
