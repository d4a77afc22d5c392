"""The sandbox gateway: PayQL's adapter over an in-process payment processor (no network, no keys).

It is PayQL's default gateway and the reference adapter the other gateways copy, with the same shape as
`gateways/stripe/` and `gateways/paypal/`: `adapter.py` (and `billing_adapter.py`) implements the protocol,
`transformers.py` (and `billing_transformers.py`) maps the processor's objects onto `gateways.types`,
`error_translation.py` maps its errors onto `gateways.errors`, `settings.py` and `package.py` describe
the sandbox to the core (settings, factory, routes, capabilities). The processor it talks to, the part
that plays the vendor, is the `processor/` subpackage; the adapter uses it only through its public
methods. Only test cards exist here; no module may log or keep a card number.
"""

from gateways.sandbox.adapter import SandboxGateway

__all__ = ["SandboxGateway"]
