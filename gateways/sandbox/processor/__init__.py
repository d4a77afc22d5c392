"""The sandbox's simulated payment processor: the "vendor" the sandbox adapter talks to, in process.

What lives here is everything a real processor keeps on its own side: `processor.py` (`SandboxProcessor`, its
verbs, idempotency and events), its state (`objects.py`, `state.py`, `state_file.py`, the file several
processes share), its billing engine (`billing*.py`), disputes, test cards (`test_methods.py`), request
validation, the fault switches (`faults.py`), its clock, and its HTTP side: the test-only routes (`routes.py`,
locked by `route_guard.py`, with the 3-D Secure page) and the webhook deliverer (`webhook_delivery.py`,
`webhook_switches.py`) that posts its events signed in Stripe's scheme.

What must never happen here: importing the adapter side (`gateways.sandbox`'s adapter, transformers and
package) or PayQL's gateway vocabulary (`gateways.types`, `gateways.errors`: mapping onto it is the adapter's
job), knowing PayQL's database or settings, or keeping a card number or CVC. And the other way round: the
adapter reaches the processor only through `SandboxProcessor`'s public methods and the objects they return (as
an SDK reaches a vendor's API), never its state, files or private attributes; the package wires the routes and
the deliverer to it.
"""

from gateways.sandbox.processor.clock import SandboxClock
from gateways.sandbox.processor.processor import SandboxProcessor
from gateways.sandbox.processor.routes import sandbox_routes
from gateways.sandbox.processor.webhook_delivery import WebhookDeliverer

__all__ = ["SandboxClock", "SandboxProcessor", "WebhookDeliverer", "sandbox_routes"]
