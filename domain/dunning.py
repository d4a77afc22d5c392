"""The dunning policy and the pure rules built on it: when to retry a failed renewal, how long
access lasts while a subscription is past due, and what happens after the last retry.

Times are the billing clock's epoch seconds (real time, or a sandbox customer's test clock). Nothing
here reads a clock or a database: callers pass `now` in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.statuses import SubscriptionStatus

DAY = 86_400


class FinalAction(StrEnum):
    CANCEL = "CANCEL"  # cancel the subscription at the gateway
    UNPAID = "UNPAID"  # keep it, without access, until the customer pays or staff cancel it


@dataclass(frozen=True, slots=True)
class BillingPolicy:
    # Days after each failed attempt until the next retry: 1, 3, 5 and 7 make five attempts in 16 days.
    retry_days: tuple[int, ...] = (1, 3, 5, 7)
    grace_days: int = 7  # access kept this long after the first failed renewal
    final_action: FinalAction = FinalAction.CANCEL
    # Where the emails send the customer to update their payment method (the merchant's SPA page).
    update_payment_url: str = ""

    def __post_init__(self) -> None:
        if any(days < 1 for days in self.retry_days):
            raise ValueError("dunning retry intervals are whole days of at least 1")
        if self.grace_days < 0:
            raise ValueError("the grace period cannot be negative")


def next_retry_at(policy: BillingPolicy, attempts_made: int, failed_at: int) -> int | None:
    """When to retry after `attempts_made` failed attempts (the first charge included); None when the
    retries are exhausted and the final action is due."""
    retries_made = attempts_made - 1
    if retries_made < 0 or retries_made >= len(policy.retry_days):
        return None
    return failed_at + policy.retry_days[retries_made] * DAY


def grace_until(policy: BillingPolicy, first_failed_at: int) -> int:
    return first_failed_at + policy.grace_days * DAY


_ALWAYS_ENTITLED = frozenset({SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE})


def grants_access(status: SubscriptionStatus, grace_ends: int | None, now: int) -> bool:
    """Trialing and active subscriptions give access; a past-due one until its grace period ends."""
    if status in _ALWAYS_ENTITLED:
        return True
    if status is SubscriptionStatus.PAST_DUE:
        return grace_ends is None or now < grace_ends
    return False
