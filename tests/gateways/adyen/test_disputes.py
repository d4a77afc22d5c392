"""`AdyenGateway.submit_dispute_evidence` through the SDK's Disputes API over HTTP, against the emulator's
Disputes routes: the chosen defense reason, the PDF documents Adyen receives, Adyen's refusals, what cannot be
served, and a submission repeated after a lost answer."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from pypdf import PdfReader

from domain.statuses import DisputeStatus
from gateways.adyen import AdyenGateway
from gateways.errors import GatewayUnavailable, InvalidGatewayRequest, NotSupported
from gateways.types import DisputeEvidence
from tests.adyen_emulator import AdyenEmulator
from tests.adyen_emulator.disputes import DISPUTES_PATH
from tests.gateways.adyen.conftest import charge

EVIDENCE = DisputeEvidence(
    product_description="2 x Espresso grinder at €40.00",
    customer_email_address="jo@example.test",
    receipt="Order 7 of 2030-01-02, total €80.00; paid through adyen.",
    uncategorized_text="Delivered to the door and signed for by J. Doe.",
)
ONLY_GOODS_NOT_RETURNED = (("GoodsNotReturned", (("GoodsNotReturned", "Required"), ("TIDorInvoice", "Optional"))),)


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


async def opened_dispute(gateway: AdyenGateway, emulator: AdyenEmulator, **options: object) -> str:
    payment = await charge(gateway)
    return emulator.chargeback(payment.reference, **options)  # type: ignore[arg-type]


async def test_evidence_defends_the_dispute_with_pdf_documents(gateway: AdyenGateway, emulator: AdyenEmulator) -> None:
    dispute = await opened_dispute(gateway, emulator)

    result = await gateway.submit_dispute_evidence(dispute, EVIDENCE)

    assert (result.reference, result.status) == (dispute, DisputeStatus.UNDER_REVIEW)
    at_adyen = emulator.defended(dispute)
    # Of the spec's example reasons, generic defense material (with the optional receipt) serves this evidence.
    assert at_adyen.defended_with == "SupplyDefenseMaterial"
    assert {code: kind for code, (kind, _pdf) in at_adyen.documents.items()} == {
        "TIDorInvoice": "application/pdf",
        "DefenseMaterial": "application/pdf",
    }
    material = text_of(at_adyen.documents["DefenseMaterial"][1])
    assert dispute in material and "signed for by J. Doe" in material and "€40.00" in material
    receipt = text_of(at_adyen.documents["TIDorInvoice"][1])
    assert "Order 7 of 2030-01-02" in receipt and "signed for" not in receipt
    dispute_calls = [path.rsplit("/", 1)[-1] for path, _key in emulator.requests if DISPUTES_PATH in path]
    assert dispute_calls == ["retrieveApplicableDefenseReasons", "supplyDefenseDocument", "defendDispute"]


async def test_a_reason_the_evidence_cannot_serve_is_not_supported_and_nothing_is_sent(
    gateway: AdyenGateway, emulator: AdyenEmulator
) -> None:
    dispute = await opened_dispute(gateway, emulator, defense_reasons=ONLY_GOODS_NOT_RETURNED)

    with pytest.raises(NotSupported) as raised:
        await gateway.submit_dispute_evidence(dispute, EVIDENCE)

    assert "GoodsNotReturned needs GoodsNotReturned (Required)" in raised.value.detail
    assert emulator.defended(dispute).documents == {} and emulator.defended(dispute).defended_with is None


async def test_a_defense_adyen_refuses_is_an_invalid_request(gateway: AdyenGateway, emulator: AdyenEmulator) -> None:
    dispute = await opened_dispute(gateway, emulator)
    await gateway.submit_dispute_evidence(dispute, EVIDENCE)
    other = DisputeEvidence(uncategorized_text="A second, different defense.")

    with pytest.raises(InvalidGatewayRequest) as raised:
        await gateway.submit_dispute_evidence(dispute, other)

    assert "already defended" in raised.value.detail
    assert "signed for by J. Doe" in text_of(emulator.defended(dispute).documents["DefenseMaterial"][1])


async def test_the_same_submission_after_a_lost_answer_replays_at_adyen(
    gateway: AdyenGateway, emulator: AdyenEmulator
) -> None:
    dispute = await opened_dispute(gateway, emulator)
    emulator.lose_next_answer("defendDispute")  # Adyen defends the dispute; its answer never arrives
    with pytest.raises(GatewayUnavailable):
        await gateway.submit_dispute_evidence(dispute, EVIDENCE)
    assert emulator.defended(dispute).defended_with == "SupplyDefenseMaterial"

    # Byte-identical documents and the same Idempotency-Keys: Adyen answers the first requests' answers.
    result = await gateway.submit_dispute_evidence(dispute, EVIDENCE)

    assert result.status is DisputeStatus.UNDER_REVIEW
    keys = [key for path, key in emulator.requests if path.endswith(("/supplyDefenseDocument", "/defendDispute"))]
    assert len(keys) == 4 and len(set(keys)) == 2 and all(key and len(key) <= 64 for key in keys)


async def test_a_dispute_adyen_does_not_know_is_an_invalid_request(gateway: AdyenGateway) -> None:
    with pytest.raises(InvalidGatewayRequest) as raised:
        await gateway.submit_dispute_evidence("DZ4DPSHB4WD2WN82", EVIDENCE)
    assert "retrieveApplicableDefenseReasons: Could not find dispute" in raised.value.detail


async def test_a_reason_that_wants_no_document_is_defended_without_supplying_any(
    gateway: AdyenGateway, emulator: AdyenEmulator
) -> None:
    dispute = await opened_dispute(gateway, emulator, defense_reasons=(("MerchantCreditedCardholder", ()),))

    await gateway.submit_dispute_evidence(dispute, EVIDENCE)

    assert emulator.defended(dispute).defended_with == "MerchantCreditedCardholder"
    assert not any(path.endswith("/supplyDefenseDocument") for path, _key in emulator.requests)


async def test_retrieve_dispute_is_not_supported(gateway: AdyenGateway) -> None:
    with pytest.raises(NotSupported):
        await gateway.retrieve_dispute("DZ4DPSHB4WD2WN82")


# --- the emulator's Disputes API itself, over plain HTTP ---------------------------------------------------------


async def call(emulator: AdyenEmulator, operation: str, body: dict[str, object], **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{emulator.base_url}{DISPUTES_PATH}/{operation}", json=body, headers=headers)


async def test_the_emulator_takes_basic_auth_or_the_api_key_and_nothing_else(
    gateway: AdyenGateway, emulator: AdyenEmulator
) -> None:
    dispute = await opened_dispute(gateway, emulator)
    body = {"merchantAccountCode": emulator.merchant_account, "disputePspReference": dispute}
    basic = emulator.basic_auth(emulator.ws_user, emulator.ws_password)

    by_user = await call(emulator, "retrieveApplicableDefenseReasons", body, Authorization=basic)
    by_key = await call(emulator, "retrieveApplicableDefenseReasons", body, **{"X-API-Key": emulator.api_key})
    wrong = await call(emulator, "retrieveApplicableDefenseReasons", body, Authorization=emulator.basic_auth())

    assert by_user.status_code == by_key.status_code == 200
    assert [r["defenseReasonCode"] for r in by_key.json()["defenseReasons"]][-1] == "SupplyDefenseMaterial"
    assert wrong.status_code == 401 and wrong.json()["errorType"] == "security"


@pytest.mark.parametrize(
    ("document", "refusal"),
    [
        ({"defenseDocumentTypeCode": "DefenseMaterial", "contentType": "text/plain"}, "not supported"),
        ({"defenseDocumentTypeCode": "DefenseMaterial", "contentType": "image/jpeg"}, "not a image/jpeg file"),
        ({"defenseDocumentTypeCode": "ProofOfSomething", "contentType": "application/pdf"}, "not applicable"),
    ],
)
async def test_the_emulator_refuses_documents_adyen_would_not_take(
    gateway: AdyenGateway, emulator: AdyenEmulator, document: dict[str, str], refusal: str
) -> None:
    dispute = await opened_dispute(gateway, emulator)
    pdf = base64.b64encode(b"%PDF-1.3\n%%EOF").decode()
    body = {
        "merchantAccountCode": emulator.merchant_account,
        "disputePspReference": dispute,
        "defenseDocuments": [{**document, "content": pdf}],
    }

    answer = await call(emulator, "supplyDefenseDocument", body, **{"X-API-Key": emulator.api_key})

    assert answer.status_code == 200 and answer.json()["disputeServiceResult"]["success"] is False
    assert refusal in answer.json()["disputeServiceResult"]["errorMessage"]
    defend = {**body, "defenseReasonCode": "SupplyDefenseMaterial"}
    defend.pop("defenseDocuments")
    unsatisfied = await call(emulator, "defendDispute", defend, **{"X-API-Key": emulator.api_key})
    assert "not satisfied: supply DefenseMaterial" in unsatisfied.json()["disputeServiceResult"]["errorMessage"]
