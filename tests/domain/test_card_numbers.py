"""Card-number (PAN) detection and redaction: every network's test cards are found in any usual
spelling, and tracking numbers, order numbers, UUIDs and other digit runs are left alone."""

from __future__ import annotations

import re
import string
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.card_numbers import contains_card_number, looks_like_card_number, redact_card_numbers

MARKER = "[REDACTED PAN]"


def luhn_ok(digits: str) -> bool:
    """An implementation independent of the module's, to build and check test numbers."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def with_check_digit(partial: str) -> str:
    return next(partial + d for d in string.digits if luhn_ok(partial + d))


# Published gateway test cards (Stripe, Adyen, Worldpay, Braintree), plus a few Luhn-completed
# numbers at the edges of a network's range.
CARDS: dict[str, list[str]] = {
    "visa-13": ["4222222222222"],
    "visa-16": ["4111111111111111", "4242424242424242", "4012888888881881", "4000056655665556"],
    "visa-19": ["4917610000000000003", "4000000000000000006"],
    "mastercard-51-55": [
        "5105105105105100",
        "5200828282828210",
        "5300000000000006",
        "5425233430109903",
        "5555555555554444",
    ],
    "mastercard-2-series": [
        "2221000000000009",
        "2223003122003222",
        with_check_digit("272099" + "0" * 9),
    ],
    "amex": ["378282246310005", "371449635398431", "340000000000009"],
    "discover": [
        "6011111111111117",
        "6011000990139424",
        "6445644564456445",
        "6500000000000002",
        "6221260000000000",
        with_check_digit("6011" + "0" * 14),  # 19 digits
    ],
    "jcb": ["3566002020360505", "3530111333300000", "3589000000000003"],
    "diners": ["30569309025904", "38520000023237", "36227206271667", "3056930009020004", "3095000000000000"],
    "unionpay": ["6200000000000005", "6200000000000047", "6205500000000000004", "8171999927660000"],
}
ALL_CARDS = [(network, pan) for network, pans in CARDS.items() for pan in pans]


def grouped(pan: str, separator: str) -> str:
    """How people write it: Amex as 4-6-5, everything else in groups of four."""
    sizes = [4, 6, 5] if len(pan) == 15 and pan[:2] in ("34", "37") else [4] * 5
    groups, rest = [], pan
    for size in sizes:
        if not rest:
            break
        groups.append(rest[:size])
        rest = rest[size:]
    return separator.join(groups)


def test_the_test_cards_are_luhn_valid() -> None:
    assert all(luhn_ok(pan) for _, pan in ALL_CARDS)
    assert {len(pan) for pan in CARDS["visa-13"] + CARDS["visa-16"] + CARDS["visa-19"]} == {13, 16, 19}


@pytest.mark.parametrize("separator", ["", " ", "-"], ids=["plain", "spaces", "dashes"])
@pytest.mark.parametrize(("network", "pan"), ALL_CARDS, ids=[f"{n}-{p}" for n, p in ALL_CARDS])
def test_every_network_is_detected_and_redacted(network: str, pan: str, separator: str) -> None:
    written = grouped(pan, separator)
    text = f"customer wrote: card {written}, please charge"
    assert looks_like_card_number(written)
    assert looks_like_card_number(text)
    redacted = redact_card_numbers(text)
    assert redacted == f"customer wrote: card {MARKER}, please charge"
    assert not any(char.isdigit() for char in redacted)


@pytest.mark.parametrize(
    "text",
    [
        "card=4111111111111111",
        "(4111111111111111)",
        "pan:4111 1111 1111 1111.",
        "tok_4111111111111111",
        '{"number":"4242-4242-4242-4242"}',
        "4111111111111111\n",
    ],
)
def test_punctuation_and_letters_around_a_card_do_not_hide_it(text: str) -> None:
    assert looks_like_card_number(text)
    assert not re.search(r"\d", redact_card_numbers(text))


def test_several_cards_in_one_text_are_all_redacted_and_the_rest_is_kept() -> None:
    order_id = "0d9c8a63-1c4b-4ec2-9a57-3b5f6f2f9e11"
    text = f"order {order_id} #100045: tried 4111 1111 1111 1111, then 378282246310005, then 5555-5555-5555-4444"
    redacted = redact_card_numbers(text)
    assert redacted == f"order {order_id} #100045: tried {MARKER}, then {MARKER}, then {MARKER}"


NOT_CARDS = {
    "ups": ["1Z999AA10123456784", "1Z 999 AA1 01 2345 678 4", "1Z12345E0205271688"],
    "usps-22": ["9400111899223397846573", "9400 1118 9922 3397 8465 73", "9205590164917312751089"],
    "usps-impb-30": ["420221539101026837331000039521"],
    "fedex-12": ["449044304137", "123456789012", "7489 8220 6040"],
    "fedex-15": ["449044304137821", "020207021381215"],
    "order-numbers": ["ORD-2024-000123", "#100045678912", "order 2024-11-26-000042", "INV/2024/0001234"],
    "phone": ["+1 (555) 010-0199", "+44 20 7946 0958"],
    "uuid": [
        str(uuid.UUID(int=0x0D9C8A631C4B4EC29A573B5F6F2F9E11)),
        "12345678-1234-1234-1234-123456789012",
        "41111111-1111-1111-1111-111111111111",
        # The last two groups spell real test cards; a UUID is still not a card.
        "00000000-0000-0000-4111-111111111111",
        "12345678-9012-3456-4242-424242424242",
        "00000000-0000-0000-5555-555555554444",
    ],
    "luhn-valid-no-network": [
        with_check_digit("1" * 15),
        with_check_digit("7" * 15),
        with_check_digit("9" * 15),
        with_check_digit("0" * 15),
        with_check_digit("2220990000000"),  # one below the Mastercard 2-series range
        with_check_digit("272100000000000"),  # one above it
    ],
    "network-prefix-wrong-length": [
        with_check_digit("4" + "1" * 12),  # Visa, 14 digits
        with_check_digit("4" + "1" * 13),  # Visa, 15 digits
        with_check_digit("4" + "1" * 15),  # Visa, 17 digits
        with_check_digit("5" + "5" * 13),  # Mastercard, 15 digits
        with_check_digit("37" + "0" * 14),  # Amex, 17 digits
    ],
    "luhn-invalid": ["4111111111111112", "4242 4242 4242 4241", "5555555555554445", "378282246310006"],
    "short-and-long-runs": ["411111111111", "41111111111111111111111", "0000 0000 0000 0000"],
}
ALL_NOT_CARDS = [(kind, text) for kind, texts in NOT_CARDS.items() for text in texts]


@pytest.mark.parametrize(("kind", "text"), ALL_NOT_CARDS, ids=[f"{k}-{t}" for k, t in ALL_NOT_CARDS])
def test_other_numbers_are_not_cards(kind: str, text: str) -> None:
    assert not looks_like_card_number(text)
    assert not looks_like_card_number(f"shipped as {text} today")
    assert redact_card_numbers(f"ref {text}.") == f"ref {text}."
    assert not contains_card_number({"ref": text})


def test_the_built_non_cards_are_what_they_claim() -> None:
    assert all(luhn_ok(t) for t in NOT_CARDS["luhn-valid-no-network"] + NOT_CARDS["network-prefix-wrong-length"])
    assert not any(luhn_ok(t.replace(" ", "")) for t in NOT_CARDS["luhn-invalid"])
    assert luhn_ok("30010203456788")  # in the timestamp 2026-11-30 01:02:03.456788 below


def test_a_uuid_next_to_a_card_keeps_the_uuid_and_loses_the_card() -> None:
    text = "payment 00000000-0000-0000-4111-111111111111 paid with 4242424242424242"
    assert redact_card_numbers(text) == f"payment 00000000-0000-0000-4111-111111111111 paid with {MARKER}"


@pytest.mark.parametrize(
    "text",
    ["4242 4242 4242 4242 12/34", "4242424242424242 12/34 123", "4242424242424242 123", "5555555555554444 12/27"],
)
def test_a_card_followed_by_its_expiry_or_cvc_is_still_redacted(text: str) -> None:
    assert looks_like_card_number(text)
    redacted = redact_card_numbers(text)
    assert "4242" not in redacted
    assert "4444" not in redacted


def test_contains_card_number_walks_nested_values() -> None:
    assert contains_card_number("4111111111111111")
    assert contains_card_number(4111111111111111)
    assert contains_card_number({"a": {"b": [{"c": ("x", "y", "pan 4111 1111 1111 1111")}]}})
    assert contains_card_number([[[[["378282246310005"]]]]])
    assert contains_card_number({"4242424242424242": "the key holds it"})
    assert contains_card_number(("ok", {"nested": [1, 2, 5555555555554444]}))


def test_contains_card_number_is_false_for_clean_values() -> None:
    clean = {
        "id": "00000000-0000-0000-4111-111111111111",
        "tracking": ["1Z999AA10123456784", "9400111899223397846573"],
        "amount": 4111,
        "flags": [True, False, None],
        "nested": {"order": "ORD-2024-000123", "ratio": 0.5},
    }
    assert not contains_card_number(clean)
    assert not contains_card_number(None)
    assert not contains_card_number(True)
    assert not contains_card_number([])


NO_DIGITS = st.text(alphabet=string.ascii_letters + " .,:;=#()/\n", max_size=20)


@settings(database=None, max_examples=300, deadline=None)
@given(
    body=st.text(alphabet=string.digits, min_size=14, max_size=14),
    separator=st.sampled_from(["", " ", "-"]),
    before=NO_DIGITS,
    after=NO_DIGITS,
)
def test_any_visa_16_luhn_valid_number_is_detected_and_fully_redacted(
    body: str, separator: str, before: str, after: str
) -> None:
    pan = with_check_digit("4" + body)
    written = grouped(pan, separator)
    text = f"{before} {written} {after}"
    assert looks_like_card_number(text)
    redacted = redact_card_numbers(text)
    assert redacted == f"{before} {MARKER} {after}"
    assert not any(char.isdigit() for char in redacted)
    assert contains_card_number({"message": [text]})


FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + digit) for digit in range(10)))
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + digit) for digit in range(10)))


@pytest.mark.parametrize(
    "separator",
    [".", "\u00a0", "\n", "\t", "_", "/", ",", "  ", ", ", " / ", "\r\n", "\u2009", "\u2013", "\u3000", "·"],
    ids=repr,
)
@pytest.mark.parametrize("pan", ["4000007770000831", "378282246310005", "5555555555554444"])
def test_any_short_run_of_non_alphanumerics_separates_groups(pan: str, separator: str) -> None:
    written = grouped(pan, separator)
    text = f"refund because card {written} was charged twice"
    assert looks_like_card_number(text)
    assert redact_card_numbers(text) == f"refund because card {MARKER} was charged twice"


@pytest.mark.parametrize(
    "written",
    [
        "4242424242424242".translate(FULL_WIDTH),
        grouped("4242424242424242", " ").translate(FULL_WIDTH),
        grouped("4242424242424242", "\u3000").translate(FULL_WIDTH),
        "4242424242424242".translate(ARABIC_INDIC),
        "4242\u200b4242\u200b4242\u200b4242",  # zero-width spaces
        "4242\u00ad4242\u00ad4242\u00ad4242",  # soft hyphens
        "\u2463242424242424242",  # circled digit four
    ],
    ids=["full-width", "full-width-spaced", "ideographic", "arabic-indic", "zero-width", "soft-hyphen", "circled"],
)
def test_digits_are_read_after_unicode_normalization(written: str) -> None:
    text = f"note: {written} — merci"
    assert looks_like_card_number(text)
    redacted = redact_card_numbers(text)
    assert redacted == f"note: {MARKER} — merci"
    assert contains_card_number({"note": [text]})


def test_redaction_keeps_the_unicode_text_around_the_card() -> None:
    text = "Grüße, ﾃｽﾄ: " + grouped("4242424242424242", " ").translate(FULL_WIDTH) + " — Straße 12"
    assert redact_card_numbers(text) == f"Grüße, ﾃｽﾄ: {MARKER} — Straße 12"


@pytest.mark.parametrize(
    "text",
    [
        # Its groups from "30" on spell 30010203456788, a Luhn-valid Diners Club number.
        "2026-11-30 01:02:03.456788+00:00",
        "2026-11-30T01:02:03.456788Z",
        "2026-11-30T05:59:59.123456Z",
        "2026-11-30 03:00:00",
        "created 2026-11-30 04:12:55.438201+00:00, updated 2026-11-30 04:12:56.000001+00:00",
        "30 items at 4.00 each, 12 boxes",
        "amounts 1000, 2500 and 125",
        "v1.2.3 build 4.2.4",
        "192.168.100.200",
        "1764699020.123456",
    ],
)
def test_our_timestamps_and_ordinary_numbers_are_not_cards(text: str) -> None:
    assert not looks_like_card_number(text)
    assert redact_card_numbers(text) == text


@pytest.mark.parametrize(
    "identifier",
    [
        "evt_sbx_4242424242424242abc12345",  # a gateway-style id whose random hex holds a test card
        "pi_sbx_0a4111111111111111f00d_secret_5555555555554444abcdef",
        uuid.UUID("4242424242424242abcd0000000000aa").hex,
    ],
)
def test_random_hex_identifiers_are_not_cards(identifier: str) -> None:
    assert not looks_like_card_number(identifier)
    assert not looks_like_card_number(f"webhook {identifier} stored")


def test_a_card_written_beside_an_identifier_is_still_found() -> None:
    assert looks_like_card_number("tok_4111111111111111")
    assert looks_like_card_number("ref 4242424242424242ab")
    assert redact_card_numbers("evt_sbx_abc123def456abc123def456 card 4242.4242.4242.4242") == (
        f"evt_sbx_abc123def456abc123def456 card {MARKER}"
    )


def test_a_timestamp_does_not_hide_a_card_written_next_to_it() -> None:
    text = "2026-11-30 01:02:03.456789+00:00 card 4000.0077.7000.0831"
    assert redact_card_numbers(text) == f"2026-11-30 01:02:03.456789+00:00 card {MARKER}"


def test_a_line_break_and_its_indentation_count_as_one_separator() -> None:
    # How graphql-core prints a long source line in an error: wrapped, with a "  | " gutter.
    excerpt = 'quantity: "4242 4242 4242 424\n  | 2"}]'
    assert redact_card_numbers(excerpt) == f'quantity: "{MARKER}"}}]'
    assert looks_like_card_number("4242 4242\n            4242 4242")


def test_a_long_separator_run_ends_the_number() -> None:
    assert not looks_like_card_number("4242 4242 ---- 4242 4242")
    assert looks_like_card_number("4242 4242-- 4242 4242")
