"""What `cancelOrder` may do with money already taken, as the merchant configures it.

Nothing here reads settings or a database: the wiring builds the policy, the use case applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CapturedOnCancel(StrEnum):
    REFUND = "REFUND"  # refund what was captured, in full
    REFUSE = "REFUSE"  # only uncaptured authorizations are voided; captured money needs refundPayment


@dataclass(frozen=True, slots=True)
class CancelPolicy:
    captured: CapturedOnCancel = CapturedOnCancel.REFUND
    # A shipped order (a recorded fulfillment) is not canceled: the goods must come back first, and
    # the refund is then an explicit refundPayment with its own reason.
    allow_after_fulfillment: bool = False
