"""The sandbox gateway: an in-process payment processor (no network, no keys) and its adapter.

It is PayQL's default gateway and the reference adapter the other gateways copy: `processor.py` plays
the vendor, `transformers.py` maps its objects onto `gateways.types`, `adapter.py` implements the
protocol, `routes.py` serves the test-only HTTP side (never mounted in production), `webhook_delivery.py`
sends the processor's events as webhooks signed in Stripe's scheme (`gateways.stripe_signature`), and
`package.py` describes the sandbox to the core (settings, factory, routes, capabilities). Only test cards
exist here; no module may log or keep a card number.
"""

from gateways.sandbox.adapter import SandboxGateway
from gateways.sandbox.clock import SandboxClock
from gateways.sandbox.processor import SandboxProcessor
from gateways.sandbox.routes import sandbox_routes
from gateways.sandbox.webhook_delivery import WebhookDeliverer

__all__ = ["SandboxClock", "SandboxGateway", "SandboxProcessor", "WebhookDeliverer", "sandbox_routes"]
