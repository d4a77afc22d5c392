"""Defending an Adyen dispute with PayQL's evidence: which defense reason the evidence can serve, and the
documents that serve it.

Adyen's Disputes API (v30) takes no free text. `retrieveApplicableDefenseReasons` lists the dispute's defense
reasons, each with the document types Adyen wants (`defenseDocumentTypes`: `Required`, `OneOrMore`, `Optional` or
`AlternativeRequired`), and `supplyDefenseDocument` takes each document as a file (`application/pdf`, `image/jpeg`,
`image/tiff`, base64). PayQL's `DisputeEvidence` is text, so:
- `WRITABLE` names the document types PayQL can honestly write from it: the generic defense material
  (`DefenseMaterial`, `AlternativeDefenseMaterial`: every field given), a transaction receipt (`TIDorInvoice`,
  when the evidence has a receipt) and a description of the goods (`GoodsWereAsDescribed`, when it describes
  them). Any other type (goods not returned, repaired or replaced, ...) states a fact the evidence does not hold.
- `choose_defense` takes the first reason, in Adyen's order, whose mandatory types are all writable, preferring
  one that generic defense material satisfies (it claims nothing beyond the evidence) over a specific claim;
  every writable optional type goes along. None: `NotSupported`, naming what each reason needs.
- `documents` writes each chosen type as a PDF (fpdf2, core fonts): a title, the dispute, labelled fields.

Pure: no calls, no clock, no I/O. The choice never depends on what was already supplied and the PDFs carry a fixed
date, so the same evidence always gives the same requests, byte for byte: a retry with the same Idempotency-Key
replays at Adyen instead of conflicting.
"""

from __future__ import annotations

import base64
import dataclasses
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from gateways.errors import NotSupported
from gateways.types import DisputeEvidence

CONTENT_TYPE: Final = "application/pdf"
GENERIC: Final = frozenset({"DefenseMaterial", "AlternativeDefenseMaterial"})
# `requirementLevel`s that make a type mandatory; `OneOrMore` types are mandatory as a group.
_MANDATORY: Final = frozenset({"Required", "AlternativeRequired"})
_ONE_OR_MORE: Final = "OneOrMore"
# A fixed creation date (fpdf2 reads the Unix epoch as "no date"): see the module docstring.
_NO_DATE: Final = datetime(1970, 1, 1, tzinfo=UTC)
_LABELS: Final[dict[str, str]] = {
    "uncategorized_text": "Merchant's statement",
    "product_description": "Products",
    "receipt": "Receipt",
    "customer_name": "Customer",
    "customer_email_address": "Customer email",
    "customer_purchase_ip": "Purchase IP address",
    "billing_address": "Billing address",
    "shipping_carrier": "Shipping carrier",
    "shipping_tracking_number": "Tracking number",
    "shipping_date": "Shipping date",
    "refund_policy": "Refund policy",
}


@dataclass(frozen=True, slots=True)
class DocumentKind:
    title: str
    fields: tuple[str, ...]  # in the order they are printed
    needs: str | None  # the field that must be given for PayQL to write it; None: any field


_ALL_FIELDS: Final = tuple(_LABELS)
_RECEIPT: Final = (
    "receipt",
    "product_description",
    "customer_name",
    "customer_email_address",
    "billing_address",
    "customer_purchase_ip",
)
WRITABLE: Final[dict[str, DocumentKind]] = {
    "DefenseMaterial": DocumentKind("Defense material", _ALL_FIELDS, None),
    "AlternativeDefenseMaterial": DocumentKind("Defense material", _ALL_FIELDS, None),
    "TIDorInvoice": DocumentKind("Transaction receipt", _RECEIPT, "receipt"),
    "GoodsWereAsDescribed": DocumentKind(
        "Goods as described", ("product_description", "refund_policy", "receipt"), "product_description"
    ),
}


@dataclass(frozen=True, slots=True)
class Defense:
    reason_code: str
    document_types: tuple[str, ...]  # in the order Adyen listed them


def writable_types(evidence: DisputeEvidence) -> frozenset[str]:
    given = {name for name, value in dataclasses.asdict(evidence).items() if value.strip()}
    return frozenset(code for code, kind in WRITABLE.items() if (kind.needs in given if kind.needs else bool(given)))


def choose_defense(reasons: Sequence[Mapping[str, Any]], evidence: DisputeEvidence, *, dispute: str) -> Defense:
    """The defense reason PayQL defends with, from `retrieveApplicableDefenseReasons`'s `defenseReasons`."""
    writable = writable_types(evidence)
    ranked: list[tuple[int, int, Defense]] = []
    for index, reason in enumerate(reasons):
        documents = _served(reason, writable)
        if documents is None:
            continue
        mandatory = {code for code, level in _types(reason) if level in _MANDATORY or level == _ONE_OR_MORE}
        # Generic material first: it asserts nothing the evidence does not hold. A reason that wants no
        # document at all would send none of the evidence, so it comes last.
        rank = 0 if mandatory & GENERIC else 1 if documents else 2
        ranked.append((rank, index, Defense(str(reason["defenseReasonCode"]), documents)))
    if ranked:
        return min(ranked, key=lambda entry: entry[:2])[2]
    if not reasons:
        raise NotSupported(
            "Adyen offers no defense for this dispute: accept it or handle it in the Customer Area.",
            detail=f"retrieveApplicableDefenseReasons listed no defense reason for dispute {dispute}",
            reference=dispute,
        )
    needs = "; ".join(
        f"{reason.get('defenseReasonCode')} needs "
        + (", ".join(f"{code} ({level})" for code, level in _types(reason) if level != "Optional") or "nothing")
        for reason in reasons
    )
    raise NotSupported(
        "Adyen wants defense documents this evidence cannot supply: upload them in the Customer Area.",
        detail=f"dispute {dispute}: {needs}; PayQL's evidence can write {', '.join(sorted(writable)) or 'nothing'}",
        reference=dispute,
    )


def documents(defense: Defense, evidence: DisputeEvidence, *, dispute: str) -> list[dict[str, str]]:
    """`supplyDefenseDocument`'s `defenseDocuments` for `defense`: one PDF per document type."""
    return [
        {
            "defenseDocumentTypeCode": code,
            "contentType": CONTENT_TYPE,
            "content": base64.b64encode(render(WRITABLE[code], evidence, dispute=dispute)).decode("ascii"),
        }
        for code in defense.document_types
    ]


def render(kind: DocumentKind, evidence: DisputeEvidence, *, dispute: str) -> bytes:
    values = dataclasses.asdict(evidence)
    pdf = FPDF(format="A4")
    # The core fonts' widest Western encoding (it has the euro sign and typographic quotes); `_printable`
    # folds anything else.
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_creation_date(_NO_DATE)
    pdf.set_title(f"{kind.title}, Adyen dispute {dispute}")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    _paragraph(pdf, kind.title, size=15, bold=True)
    _paragraph(pdf, f"Adyen dispute {dispute}", size=10)
    for name in kind.fields:
        if values[name].strip():
            _paragraph(pdf, _LABELS[name], size=11, bold=True)
            _paragraph(pdf, values[name].strip(), size=10)
    return bytes(pdf.output())


def _paragraph(pdf: FPDF, text: str, *, size: int, bold: bool = False) -> None:
    pdf.set_font("Helvetica", style="B" if bold else "", size=size)
    pdf.multi_cell(0, size * 0.55, _printable(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)


def _printable(text: str) -> str:
    """`text` in windows-1252: accents dropped where that is what it takes, anything else shown as "?"."""
    text = text.replace("\r\n", "\n").replace("\t", "    ")
    kept = []
    for char in text:
        if char != "\n" and not char.isprintable():
            char = " "
        try:
            char.encode("windows-1252")
        except UnicodeEncodeError:
            folded = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            char = folded if folded and all(_encodable(c) for c in folded) else "?"
        kept.append(char)
    return "".join(kept)


def _encodable(char: str) -> bool:
    try:
        char.encode("windows-1252")
    except UnicodeEncodeError:
        return False
    return True


def _served(reason: Mapping[str, Any], writable: frozenset[str]) -> tuple[str, ...] | None:
    """The document types PayQL supplies for `reason`, or None when a mandatory one is not writable."""
    types = _types(reason)
    if any(level in _MANDATORY and code not in writable for code, level in types):
        return None
    group = [code for code, level in types if level == _ONE_OR_MORE]
    if group and not any(code in writable for code in group):
        return None
    return tuple(code for code, _level in types if code in writable)


def _types(reason: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(entry.get("defenseDocumentTypeCode")), str(entry.get("requirementLevel")))
        for entry in reason.get("defenseDocumentTypes") or []
        if isinstance(entry, Mapping)
    ]
