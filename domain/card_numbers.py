"""Detection and redaction of anything that looks like a payment card number (PAN).

A match is 13-19 digits (optionally grouped by single spaces or dashes) that is Luhn-valid and
starts with a card network's prefix, so order numbers and parcel tracking numbers pass. This
module must never log, store or return the number it finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# A run of digit groups joined by single spaces or dashes ("4242 4242 4242 4242 12", "4242424242424242").
_RUN = re.compile(r"\d+(?:[ -]\d+)*")
_GROUP = re.compile(r"\d+")
_MIN_DIGITS, _MAX_DIGITS = 13, 19
# UUIDs (our ids) are dash-joined hex groups that can be all digits; they are never card numbers.
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _has_network_prefix(digits: str) -> bool:
    length = len(digits)
    two, three, four, six = int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4":  # Visa
        return length in (13, 16, 19)
    if 51 <= two <= 55 or 222100 <= six <= 272099:  # Mastercard
        return length == 16
    if two in (34, 37):  # American Express
        return length == 15
    if four == 6011 or two == 65 or 644 <= three <= 649 or 622126 <= six <= 622925:  # Discover
        return 16 <= length <= 19
    if 3528 <= four <= 3589:  # JCB
        return 16 <= length <= 19
    if 300 <= three <= 305 or two in (36, 38, 39) or four == 3095:  # Diners Club
        return 14 <= length <= 19
    if two == 62 or two == 81:  # UnionPay
        return 16 <= length <= 19
    return False


def _card_spans(text: str) -> Iterator[tuple[int, int]]:
    """Spans of card numbers: whole groups of a run whose digits form a PAN.

    A card may sit beside other groups of the same run (its expiry "12" or CVC "123", a quantity
    before it), so every sequence of consecutive groups is tried; digits inside one unbroken group
    are never split, so long reference numbers do not yield accidental matches.
    """
    text = _UUID.sub(lambda m: "u" * len(m.group()), text)
    for run in _RUN.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start(), m.group()) for m in _GROUP.finditer(run.group())]
        first = 0
        while first < len(groups):
            found = None
            digits = ""
            for last in range(first, len(groups)):
                digits += groups[last][2]
                if len(digits) > _MAX_DIGITS:
                    break
                if len(digits) >= _MIN_DIGITS and _has_network_prefix(digits) and _luhn_valid(digits):
                    found = last
            if found is None:
                first += 1
                continue
            yield groups[first][0], groups[found][1]
            first = found + 1


def looks_like_card_number(text: str) -> bool:
    """True when `text` contains a Luhn-valid number with a card-network prefix."""
    return any(True for _ in _card_spans(text))


def redact_card_numbers(text: str) -> str:
    """Replace every card-like number in `text` by a fixed marker that keeps no digit of it."""
    spans = list(_card_spans(text))
    if not spans:
        return text
    parts: list[str] = []
    last = 0
    for start, end in spans:
        parts.append(text[last:start])
        parts.append("[REDACTED PAN]")
        last = end
    parts.append(text[last:])
    return "".join(parts)


def contains_card_number(value: object) -> bool:
    """Walk a JSON-like value (dicts, lists, strings, ints) and report whether any leaf is card-like."""
    if isinstance(value, str):
        return looks_like_card_number(value)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return looks_like_card_number(str(value))
    if isinstance(value, dict):
        return any(contains_card_number(k) or contains_card_number(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_card_number(v) for v in value)
    return False
