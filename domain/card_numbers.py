"""Detection and redaction of anything that looks like a payment card number (PAN).

A match is 13-19 digits that is Luhn-valid and starts with a card network's prefix, so order
numbers and parcel tracking numbers pass. The digits may be grouped by any short run of
characters that are neither letters nor digits ("4242.4242.4242.4242", "4242\u00a04242…",
"4242_4242/…", "4242,  4242…"), and the text is read after Unicode NFKC normalization, so
full-width or other-script digits count as digits. Our own UUIDs and ISO timestamps are never
cards. This module must never log, store or return the number it finds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

# A run of digit groups joined by 1 to 3 characters that are neither letters nor digits.
_RUN = re.compile(r"[0-9]+(?:[\W_]{1,3}[0-9]+)*")
_GROUP = re.compile(r"[0-9]+")
_MIN_DIGITS, _MAX_DIGITS = 13, 19
# UUIDs (our ids, idempotency keys) are dash-joined hex groups that can be all digits.
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
# ISO-8601 / SQL timestamps ("2026-11-30 01:02:03.456789+00:00") as our databases and logs write them.
_TIMESTAMP = re.compile(
    r"\b\d{4}-[01]\d-[0-3]\d[T ][0-2]\d:[0-5]\d(?::[0-6]\d(?:\.\d{1,9})?)?(?:Z|[+-][0-2]\d:?[0-5]\d)?(?![0-9])"
)
_OWN_FORMATS = (_UUID, _TIMESTAMP)


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


@lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """One non-ASCII character as the detector reads it: NFKC, any decimal digit as 0-9, and
    invisible format characters (zero-width space, soft hyphen, BOM) dropped."""
    if unicodedata.category(char) == "Cf":
        return ""
    folded = unicodedata.normalize("NFKC", char)
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() and not c.isascii() else c for c in folded)


def _normalized(text: str) -> tuple[str, list[int] | None]:
    """The text to scan and, when it differs from `text`, where each of its characters came from.

    Characters are folded one by one (not the whole string at once) so every scanned character
    maps back to the original one, and a redaction removes exactly the original characters.
    ASCII text, by far the most common, is scanned as it is.
    """
    if text.isascii():
        return text, None
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        piece = char if char.isascii() else _fold(char)
        chars.append(piece)
        origin.extend([index] * len(piece))
    return "".join(chars), origin


def _card_spans(text: str) -> Iterator[tuple[int, int]]:
    """Spans of card numbers in `text`: whole groups of a run whose digits form a PAN.

    A card may sit beside other groups of the same run (its expiry "12" or CVC "123", a quantity
    before it), so every sequence of consecutive groups is tried; digits inside one unbroken group
    are never split, so long reference numbers do not yield accidental matches.
    """
    scanned, origin = _normalized(text)
    if sum(map(scanned.count, "0123456789")) < _MIN_DIGITS:
        return
    for own_format in _OWN_FORMATS:
        scanned = own_format.sub(lambda m: "u" * len(m.group()), scanned)
    for run in _RUN.finditer(scanned):
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
            start, end = groups[first][0], groups[found][1]
            yield (start, end) if origin is None else (origin[start], origin[end - 1] + 1)
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
