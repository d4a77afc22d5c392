"""The sandbox's 3-D Secure step as a next action: where the shopper goes to authenticate a payment.

One place for the URL that the processor's `processor/routes.py` serves, so the payment and the billing
transformers point at the same page without importing each other. Nothing here reads or changes processor
state.
"""

from __future__ import annotations

from domain.statuses import NextActionType
from gateways.types import NextAction


def authentication_url(routes_url: str, payment_intent_id: str) -> str:
    """Where the shopper completes the sandbox's 3-D Secure step: `processor/routes.py`, mounted at `routes_url`
    (the public base URL and the gateway's name, "/sandbox" or an instance's "/sandbox_backup")."""
    return f"{routes_url.rstrip('/')}/authenticate/{payment_intent_id}"


def authenticate_action(routes_url: str, payment_intent_id: str, client_secret: str) -> NextAction:
    return NextAction(
        type=NextActionType.REDIRECT,
        redirect_url=authentication_url(routes_url, payment_intent_id),
        client_secret=client_secret,
    )
