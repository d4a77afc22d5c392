"""`gateways.adyen.defense`: which defense reason PayQL's evidence serves, and the PDFs it writes."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pypdf import PdfReader

from gateways.adyen.defense import WRITABLE, Defense, choose_defense, documents, render
from gateways.errors import NotSupported
from gateways.types import DisputeEvidence

FULL = DisputeEvidence(
    product_description="1 x Kettle at €30.00", receipt="Order 9, total €30.00", uncategorized_text="Delivered."
)
STATEMENT_ONLY = DisputeEvidence(uncategorized_text="Delivered.")


def reason(code: str, *types: tuple[str, str]) -> dict[str, Any]:
    return {
        "defenseReasonCode": code,
        "satisfied": False,
        "defenseDocumentTypes": [
            {"defenseDocumentTypeCode": kind, "requirementLevel": level, "available": False} for kind, level in types
        ],
    }


def test_generic_material_is_preferred_to_a_specific_claim_listed_before_it() -> None:
    reasons = [
        reason("GoodsWereAsDescribed", ("GoodsWereAsDescribed", "Required"), ("TIDorInvoice", "Required")),
        reason("SupplyDefenseMaterial", ("TIDorInvoice", "Optional"), ("DefenseMaterial", "Required")),
    ]
    assert choose_defense(reasons, FULL, dispute="DZ1") == Defense(
        "SupplyDefenseMaterial", ("TIDorInvoice", "DefenseMaterial")
    )


def test_a_specific_reason_is_chosen_only_when_its_documents_can_be_written() -> None:
    described = reason("GoodsWereAsDescribed", ("GoodsWereAsDescribed", "Required"), ("TIDorInvoice", "Required"))
    assert choose_defense([described], FULL, dispute="DZ1").document_types == ("GoodsWereAsDescribed", "TIDorInvoice")
    with pytest.raises(NotSupported) as raised:
        choose_defense([described], STATEMENT_ONLY, dispute="DZ1")  # no product description, no receipt
    assert "GoodsWereAsDescribed needs GoodsWereAsDescribed (Required), TIDorInvoice (Required)" in raised.value.detail


def test_one_of_a_one_or_more_group_and_alternative_material_serve() -> None:
    group = reason("Group", ("GoodsNotReturned", "OneOrMore"), ("TIDorInvoice", "OneOrMore"))
    assert choose_defense([group], FULL, dispute="DZ1") == Defense("Group", ("TIDorInvoice",))
    with pytest.raises(NotSupported):
        choose_defense([group], STATEMENT_ONLY, dispute="DZ1")
    alternative = reason("Alt", ("AlternativeDefenseMaterial", "AlternativeRequired"))
    assert choose_defense([alternative], STATEMENT_ONLY, dispute="DZ1").document_types == (
        "AlternativeDefenseMaterial",
    )


def test_a_reason_wanting_no_document_comes_after_one_that_carries_the_evidence() -> None:
    bare = reason("NoDocuments")
    material = reason("SupplyDefenseMaterial", ("DefenseMaterial", "Required"))
    assert choose_defense([bare, material], STATEMENT_ONLY, dispute="DZ1").reason_code == "SupplyDefenseMaterial"
    assert choose_defense([bare], STATEMENT_ONLY, dispute="DZ1") == Defense("NoDocuments", ())


def test_no_defense_reason_at_all_is_not_supported() -> None:
    with pytest.raises(NotSupported) as raised:
        choose_defense([], FULL, dispute="DZ1")
    assert "no defense" in raised.value.message


def test_documents_are_the_same_bytes_every_time_and_fold_what_the_core_fonts_cannot_show() -> None:
    evidence = DisputeEvidence(customer_name="Zoë Ŵendy 李", uncategorized_text="Left at the door\twith a note.")
    pdf = render(WRITABLE["DefenseMaterial"], evidence, dispute="DZ1")

    assert pdf == render(WRITABLE["DefenseMaterial"], evidence, dispute="DZ1")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Zoë Wendy ?" in text and "Left at the door" in text
    assert "Receipt" not in text  # empty fields are left out
    sent = documents(Defense("R", ("DefenseMaterial",)), evidence, dispute="DZ1")
    assert [(d["defenseDocumentTypeCode"], d["contentType"]) for d in sent] == [("DefenseMaterial", "application/pdf")]
