"""Which gateway a shopper's payment method can go to: a token belongs to the gateway that issued it.

Pure code over what packages declare (`ClientTokenization.token_format`, `Capabilities.collects_payment_method`):
no database, no network, no provider's name. The routing policy says in which order gateways are tried;
this says, for one `paymentMethod`, how each of them could take it, and so where a payment goes first and
where it fails over to:

- `Carry.AS_SENT`: the token has that gateway's documented shape (or the gateway declares none, so it cannot
  be told apart): it is sent there as it is, and failover is transparent to the shopper.
- `Carry.GATEWAY_COLLECTS`: the gateway collects a payment method itself after the charge (an approval
  redirect, its checkout opened through nextAction): a new payment there needs nothing from the shopper first.
- `Carry.SHOPPER_COLLECTS`: the shopper must tokenize again with that gateway's SDK; the SPA is told which.

Never does a token go to a gateway whose documented shape it does not have: that gateway would refuse it,
and a second failed payment would be all the shopper got.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from gateways.package import Capabilities

# What a payment carried to a gateway that collects a payment method itself records instead of a token (the
# charge's ChargeRequest.payment_method; such a gateway reads only a token of its own format from it).
COLLECTED_BY_GATEWAY = "collected_by_gateway"


class Carry(StrEnum):
    AS_SENT = "AS_SENT"
    GATEWAY_COLLECTS = "GATEWAY_COLLECTS"
    SHOPPER_COLLECTS = "SHOPPER_COLLECTS"


@dataclass(frozen=True, slots=True)
class Step:
    """The gateway to go to next (its index among those left) and how the payment method gets there."""

    index: int
    carry: Carry


def carry(payment_method: str, capabilities: Capabilities) -> Carry:
    """How `payment_method` could be taken by a gateway with these capabilities."""
    tokenization = capabilities.client_tokenization
    token_format = tokenization.token_format if tokenization else None
    if token_format is not None and _pattern(token_format).fullmatch(payment_method):
        return Carry.AS_SENT
    if capabilities.collects_payment_method:
        return Carry.GATEWAY_COLLECTS
    if token_format is None:
        return Carry.AS_SENT
    return Carry.SHOPPER_COLLECTS


def first_step(payment_method: str, gateways: Sequence[Capabilities]) -> int:
    """Where a new payment goes first: the first gateway, in policy order, that takes the token as sent; the
    first gateway when none does (it answers for the token: nothing is moved for a token nobody knows)."""
    for index, capabilities in enumerate(gateways):
        if carry(payment_method, capabilities) is Carry.AS_SENT:
            return index
    return 0


def failover_step(payment_method: str, gateways: Sequence[Capabilities]) -> Step | None:
    """Where a payment refused before it was accepted goes next, among the gateways left (in policy order):
    the first that takes the token as sent (transparent to the shopper); else the next in order, which either
    collects a payment method itself or is the one the shopper must tokenize on. None when none is left."""
    if not gateways:
        return None
    index = first_step(payment_method, gateways)
    return Step(index, carry(payment_method, gateways[index]))


@cache
def _pattern(token_format: str) -> re.Pattern[str]:
    return re.compile(token_format)
