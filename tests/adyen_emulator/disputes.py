"""The emulator's Disputes API (DisputeService v30), from Adyen's `DisputeService-v30.json` and the SDK's
`Adyen.services.disputes` (the paths under `/ca/services/DisputeService/v30`).

- `retrieveApplicableDefenseReasons`: the dispute's `defenseReasons`, each with its `defenseDocumentTypes`
  (`available` once supplied, `requirementLevel`) and `satisfied`. By default the four reasons of the spec's own
  example answer (GoodsNotReturned, GoodsRepairedOrReplaced, GoodsWereAsDescribed, SupplyDefenseMaterial); a test
  may give others (`AdyenEmulator.chargeback(..., defense_reasons=...)`).
- `supplyDefenseDocument`: each document's type must be one the dispute's reasons list, its `contentType` one
  Adyen's reference names (application/pdf, image/jpeg, image/jpg, image/tiff) and its `content` base64 of a file
  of that type (checked by its magic bytes). A type supplied again replaces the earlier document (the spec does not
  say; `deleteDisputeDefenseDocument` exists to remove one).
- `defendDispute`: the reason must be listed and satisfied (every `Required` / `AlternativeRequired` type
  supplied, and one of the `OneOrMore` ones); then the dispute is defended, and nothing more can be supplied,
  deleted, defended or accepted. `acceptDispute` ends it likewise.
- Answers carry `disputeServiceResult` (`success`, and `errorMessage` when false): a refusal is a 200 with
  success false, as the spec's `DisputeServiceResult` describes. The error messages' wording is the emulator's
  own (Adyen publishes the shape, not the texts). A missing required field is a 422 `ServiceError`, another
  merchant account a 403.
- Auth as the spec's security schemes: `X-API-Key` (what the SDK sends with an API key) or HTTP Basic with the
  emulator's web service user. The Idempotency-Key is honoured as on the Checkout routes.

Does not reproduce: scheme-specific reason lists, defense deadlines, file size limits, and the notifications that
follow a defense (a test sends CHARGEBACK_REVERSED or SECOND_CHARGEBACK itself).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.requests import Request

from tests.adyen_emulator.errors import ServiceError

DISPUTES_PATH: Final = "/ca/services/DisputeService/v30"
OPERATIONS: Final = (
    "retrieveApplicableDefenseReasons",
    "supplyDefenseDocument",
    "defendDispute",
    "acceptDispute",
    "deleteDisputeDefenseDocument",
)
# The defense reasons of the spec's example answer to retrieveApplicableDefenseReasons: (code, [(type, level)]).
SPEC_EXAMPLE_REASONS: Final[tuple[tuple[str, tuple[tuple[str, str], ...]], ...]] = (
    ("GoodsNotReturned", (("TIDorInvoice", "Optional"), ("GoodsNotReturned", "Required"))),
    ("GoodsRepairedOrReplaced", (("TIDorInvoice", "Optional"), ("GoodsRepairedOrReplaced", "Required"))),
    ("GoodsWereAsDescribed", (("GoodsWereAsDescribed", "Required"), ("TIDorInvoice", "Required"))),
    ("SupplyDefenseMaterial", (("TIDorInvoice", "Optional"), ("DefenseMaterial", "Required"))),
)
# contentType → the magic bytes a file of that type starts with.
_MAGIC: Final[dict[str, tuple[bytes, ...]]] = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/jpg": (b"\xff\xd8\xff",),
    "image/tiff": (b"II*\x00", b"MM\x00*"),
}
Reasons = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


class DisputeServiceRefusal(Exception):
    """A refusal answered as `disputeServiceResult.success` false."""


@dataclass
class EmulatedDispute:
    psp: str
    payment_psp: str
    reasons: Reasons = SPEC_EXAMPLE_REASONS
    documents: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # type → (contentType, file)
    defended_with: str | None = None
    accepted: bool = False

    def reasons_json(self) -> list[dict[str, Any]]:
        return [
            {
                "defenseDocumentTypes": [
                    {"available": code in self.documents, "defenseDocumentTypeCode": code, "requirementLevel": level}
                    for code, level in types
                ],
                "defenseReasonCode": reason,
                "satisfied": self.satisfied(types),
            }
            for reason, types in self.reasons
        ]

    def satisfied(self, types: tuple[tuple[str, str], ...]) -> bool:
        mandatory = all(code in self.documents for code, level in types if level in ("Required", "AlternativeRequired"))
        group = [code for code, level in types if level == "OneOrMore"]
        return mandatory and (not group or any(code in self.documents for code in group))


@dataclass
class DisputeService:
    merchant_account: str
    disputes: dict[str, EmulatedDispute] = field(default_factory=dict)  # dispute PSP reference → dispute

    async def handle(self, request: Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        operation = request.url.path.rsplit("/", 1)[-1]
        dispute = self._dispute(body)
        try:
            if dispute is None:
                raise DisputeServiceRefusal(f"Could not find dispute {body['disputePspReference']}")
            if operation == "retrieveApplicableDefenseReasons":
                return 200, {"defenseReasons": dispute.reasons_json(), "disputeServiceResult": {"success": True}}
            self._still_open(dispute)
            if operation == "supplyDefenseDocument":
                self._supply(dispute, body)
            elif operation == "defendDispute":
                self._defend(dispute, _required(body, "defenseReasonCode"))
            elif operation == "acceptDispute":
                dispute.accepted = True
            else:
                removed = dispute.documents.pop(_required(body, "defenseDocumentType"), None)
                if removed is None:
                    raise DisputeServiceRefusal("No defense document of this type was supplied")
        except DisputeServiceRefusal as refusal:
            return 200, {"disputeServiceResult": {"success": False, "errorMessage": str(refusal)}}
        return 200, {"disputeServiceResult": {"success": True}}

    def _dispute(self, body: dict[str, Any]) -> EmulatedDispute | None:
        account = _required(body, "merchantAccountCode")
        psp = _required(body, "disputePspReference")
        if account != self.merchant_account:
            raise ServiceError(403, "901", "Invalid Merchant Account", "security")
        return self.disputes.get(psp)

    def _still_open(self, dispute: EmulatedDispute) -> None:
        if dispute.defended_with is not None:
            raise DisputeServiceRefusal("Dispute is already defended")
        if dispute.accepted:
            raise DisputeServiceRefusal("Dispute is already accepted")

    def _supply(self, dispute: EmulatedDispute, body: dict[str, Any]) -> None:
        documents = body.get("defenseDocuments")
        if not isinstance(documents, list) or not documents:
            raise _missing("defenseDocuments")
        listed = {code for _reason, types in dispute.reasons for code, _level in types}
        received: dict[str, tuple[str, bytes]] = {}
        for document in documents:
            if not isinstance(document, dict):
                raise _missing("defenseDocuments")
            code = _required(document, "defenseDocumentTypeCode")
            content_type = _required(document, "contentType")
            if code not in listed:
                raise DisputeServiceRefusal(f"Defense document type {code} is not applicable to this dispute")
            if content_type not in _MAGIC:
                raise DisputeServiceRefusal(f"Content type {content_type} is not supported")
            try:
                content = base64.b64decode(_required(document, "content"), validate=True)
            except (binascii.Error, ValueError):
                raise DisputeServiceRefusal(f"The content of {code} is not base64") from None
            if not content.startswith(_MAGIC[content_type]):
                raise DisputeServiceRefusal(f"The content of {code} is not a {content_type} file")
            received[code] = (content_type, content)
        dispute.documents.update(received)  # all or nothing: one bad document refuses the request

    def _defend(self, dispute: EmulatedDispute, reason_code: str) -> None:
        types = dict(dispute.reasons).get(reason_code)
        if types is None:
            raise DisputeServiceRefusal(f"Defense reason {reason_code} is not applicable to this dispute")
        if not dispute.satisfied(types):
            missing = [code for code, level in types if level != "Optional" and code not in dispute.documents]
            raise DisputeServiceRefusal(f"Defense reason {reason_code} is not satisfied: supply {', '.join(missing)}")
        dispute.defended_with = reason_code


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _missing(name)
    return value


def _missing(name: str) -> ServiceError:
    return ServiceError(422, "14_0", f"Required field '{name}' is not provided.")
