"""PayPal (Orders v2, Payments v2, Subscriptions v1 and Disputes v1 through `paypal-server-sdk`): see
`adapter.PayPalGateway`."""

from gateways.paypal.adapter import APPROVED_ORDER_PREFIX, PayPalGateway

__all__ = ["APPROVED_ORDER_PREFIX", "PayPalGateway"]
