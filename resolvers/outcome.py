"""The result of a money-moving mutation, and the idempotent runner that stores and replays it.

An outcome is a snapshot of ids, next action and user errors: a replay returns the same order
and payment (read as they are now), the same next action and the same errors, without calling
a gateway again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from db import idempotency
from db.idempotency import Claim
from db.models import Order, Payment
from domain.card_numbers import looks_like_card_number
from resolvers.context import Caller, Deps
from resolvers.errors import ErrorCode, UseCaseError

logger = logging.getLogger(__name__)

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class UserErrorData:
    code: ErrorCode
    message: str
    field: str | None = None


class Disposition(StrEnum):
    COMPLETE = "COMPLETE"  # store and replay this outcome for the key's lifetime
    RELEASE = "RELEASE"  # outcome unknown (gateway unavailable): the next copy resumes
    FORGET = "FORGET"  # refused before any effect: the key may be used again


@dataclass(slots=True)
class Outcome:
    order_id: UUID | None = None
    payment_id: UUID | None = None
    refund_id: UUID | None = None
    subscription_id: UUID | None = None
    next_action: dict[str, Any] | None = None
    errors: list[UserErrorData] = field(default_factory=list)
    disposition: Disposition = Disposition.COMPLETE
    # The order and payment as this request committed them, when it has them, so that the payload
    # does not read them again; never stored (a replay reads them as they are now).
    committed_order: Order | None = None
    committed_payment: Payment | None = None

    @classmethod
    def failure(cls, error: UseCaseError, disposition: Disposition = Disposition.FORGET) -> Outcome:
        return cls(errors=[UserErrorData(error.code, error.message, error.field)], disposition=disposition)

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": str(self.order_id) if self.order_id else None,
            "payment_id": str(self.payment_id) if self.payment_id else None,
            "refund_id": str(self.refund_id) if self.refund_id else None,
            "subscription_id": str(self.subscription_id) if self.subscription_id else None,
            "next_action": self.next_action,
            "errors": [asdict(error) for error in self.errors],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls(
            order_id=UUID(data["order_id"]) if data.get("order_id") else None,
            payment_id=UUID(data["payment_id"]) if data.get("payment_id") else None,
            refund_id=UUID(data["refund_id"]) if data.get("refund_id") else None,
            subscription_id=UUID(data["subscription_id"]) if data.get("subscription_id") else None,
            next_action=data.get("next_action"),
            errors=[UserErrorData(ErrorCode(e["code"]), e["message"], e.get("field")) for e in data.get("errors", [])],
        )


Handler = Callable[[Claim], Awaitable[Outcome]]


async def run_idempotent(
    deps: Deps,
    caller: Caller,
    operation: str,
    idempotency_key: str,
    request: dict[str, Any],
    handler: Handler,
) -> Outcome:
    """Run `handler` once per (caller, operation, key); copies wait for and replay its outcome.

    The request's gateway calls and their retries keep to one deadline from here on (`gateways.deadline`):
    a shopper is answered in time, with a payment still in flight if the gateway has not answered."""
    with deps.gateways.request_deadline():
        return await _run_idempotent(deps, caller, operation, idempotency_key, request, handler)


async def _run_idempotent(
    deps: Deps,
    caller: Caller,
    operation: str,
    idempotency_key: str,
    request: dict[str, Any],
    handler: Handler,
) -> Outcome:
    try:
        principal = caller.require_principal()
        key = idempotency_key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or looks_like_card_number(key):
            raise UseCaseError(
                ErrorCode.INVALID_INPUT,
                "An idempotency key of 1 to 255 characters is required.",
                "idempotencyKey",
            )
        if not await deps.rate_limiter.hit(principal.actor_name):
            raise UseCaseError(ErrorCode.RATE_LIMITED, "Too many payment requests. Wait a minute and try again.")
    except UseCaseError as error:
        return Outcome.failure(error)

    scope = f"{principal.actor_name}:{operation}"
    try:
        claimed = await idempotency.claim_or_replay(
            scope,
            key,
            idempotency.fingerprint(request),
            lease_seconds=deps.policy.idempotency_lease_seconds,
            ttl_seconds=deps.policy.idempotency_ttl_seconds,
            wait_seconds=deps.policy.idempotency_lease_seconds,
        )
    except idempotency.IdempotencyKeyConflict:
        return Outcome.failure(
            UseCaseError(
                ErrorCode.IDEMPOTENCY_CONFLICT,
                "This idempotency key was already used for a different request.",
                "idempotencyKey",
            )
        )
    except idempotency.RequestStillInProgress:
        return Outcome.failure(
            UseCaseError(ErrorCode.PAYMENT_IN_PROGRESS, "This request is still being processed; retry shortly.")
        )
    if isinstance(claimed, idempotency.Replay):
        return Outcome.from_json(claimed.response)

    try:
        outcome = await handler(claimed)
    except UseCaseError as error:
        await idempotency.forget(claimed)
        return Outcome.failure(error)
    except BaseException:
        # Unknown state: keep the record and its recovery point so a retry resumes, not restarts.
        await idempotency.release(claimed)
        raise
    if outcome.disposition is Disposition.FORGET:
        await idempotency.forget(claimed)
    elif outcome.disposition is Disposition.RELEASE:
        await idempotency.release(claimed)
    else:
        await idempotency.complete(claimed, outcome.to_json())
    return outcome
