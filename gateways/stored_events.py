"""`StoredEventReader`: a gateway whose webhook deliveries are not a JSON object reads its stored ones itself.

The webhook pipeline stores each verified delivery's raw body and, when it processes the event later, reads the
payload back from it. Most gateways post JSON, which the pipeline decodes; a gateway posting another shape
(form-encoded fields carrying a signed XML document, say) implements this protocol and turns the stored body
into the payload its `interpret_event` reads. It never re-checks the signature: the body was verified before
it was stored.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class StoredEventReader(Protocol):
    def stored_payload(self, body: str) -> dict[str, Any]:
        """The payload of a stored (already verified) delivery, as `interpret_event` expects it."""
        ...
