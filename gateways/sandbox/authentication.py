"""The sandbox's 3-D Secure step as a next action: where the shopper goes to authenticate a payment.

One place for the URL that `routes.py` serves, so the payment and the billing transformers point at
the same page without importing each other. Nothing here reads or changes processor state.
"""

from __future__ import annotations

from domain.statuses import NextActionType
from gateways.types import NextAction


def authentication_url(public_base_url: str, payment_intent_id: str) -> str:
    """Where the shopper completes the sandbox's 3-D Secure step (served by `routes.py`)."""
    return f"{public_base_url.rstrip('/')}/sandbox/authenticate/{payment_intent_id}"


def authenticate_action(public_base_url: str, payment_intent_id: str, client_secret: str) -> NextAction:
    return NextAction(
        type=NextActionType.REDIRECT,
        redirect_url=authentication_url(public_base_url, payment_intent_id),
        client_secret=client_secret,
    )
