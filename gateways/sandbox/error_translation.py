"""Turning the sandbox processor's failures into `gateways.errors`, for both sandbox adapters
(payments and billing). Nothing else may catch sandbox exceptions on their way out of an adapter."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from gateways.errors import (
    GatewayIdempotencyConflict,
    GatewayNotAttempted,
    GatewayUnavailable,
    InvalidGatewayRequest,
    PaymentDeclined,
)
from gateways.sandbox.processor.errors import (
    SandboxCardDeclined,
    SandboxIdempotencyError,
    SandboxInvalidRequest,
    SandboxTimeout,
    SandboxUnavailable,
)

_T = TypeVar("_T")


async def translated(call: Awaitable[_T], *, reference: str | None = None) -> _T:
    """Await a processor call, turning its failures into `gateways.errors`."""
    try:
        return await call
    except SandboxCardDeclined as exc:
        raise PaymentDeclined(
            exc.message,
            decline_code=exc.decline_code,
            detail=f"sandbox declined {exc.payment_intent_id}: {exc.decline_code}",
            reference=exc.payment_intent_id,
        ) from exc
    except SandboxInvalidRequest as exc:
        raise InvalidGatewayRequest(exc.message, detail=f"sandbox {exc.code}", reference=reference) from exc
    except SandboxIdempotencyError as exc:
        raise GatewayIdempotencyConflict(exc.message, detail="sandbox idempotency", reference=reference) from exc
    except SandboxTimeout as exc:
        raise GatewayUnavailable(
            "The payment provider did not answer in time.",
            detail=f"{exc.message} It may have acted: read it back, or retry with the same key.",
            reference=reference,
        ) from exc
    except SandboxUnavailable as exc:
        # The processor did nothing (it fails before acting): safe to try elsewhere.
        raise GatewayNotAttempted(
            "The payment provider is unavailable.", detail=exc.message, reference=reference
        ) from exc
