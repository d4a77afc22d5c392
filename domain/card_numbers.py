"""Detection and redaction of anything that looks like a payment card number (PAN).

A match is 13-19 digits that is Luhn-valid and starts with a card network's prefix, so order
numbers and parcel tracking numbers pass. The digits may be grouped by any short run of
characters that are neither letters nor digits ("4242.4242.4242.4242", "4242\u00a04242…",
"4242_4242/…", "4242,  4242…", a line break and its indentation), and the text is read after
Unicode NFKC normalization, so full-width or other-script digits count as digits. Our own UUIDs,
ISO timestamps and random hex identifiers are never cards. This module must never log, store or
return the number it finds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from itertools import accumulate

# A run of digit groups joined by separators: 1 to 3 characters that are neither letters nor
# digits, where a run of whitespace (a line break and its indentation) counts as one. The
# possessive `\s++` keeps matching linear on long whitespace.
_RUN = re.compile(r"[0-9]+(?:(?:\s++|[^\w\s]|_){1,3}[0-9]+)*")
_GROUP = re.compile(r"[0-9]+")
_MIN_DIGITS, _MAX_DIGITS = 13, 19
# No separator is a letter, so a card's digits lie in a stretch of at least that many characters
# without one: a text with no such stretch (most headers, words, hex signatures) holds no card, and
# one search in C tells so before any run is looked at.
_LETTERLESS_STRETCH = re.compile(f"[^A-Za-z]{{{_MIN_DIGITS}}}")
# UUIDs (our ids, idempotency keys) are dash-joined hex groups that can be all digits.
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
# ISO-8601 / SQL timestamps ("2026-11-30 01:02:03.456789+00:00") as our databases and logs write them.
_TIMESTAMP = re.compile(
    r"\b\d{4}-[01]\d-[0-3]\d[T ][0-2]\d:[0-5]\d(?::[0-6]\d(?:\.\d{1,9})?)?(?:Z|[+-][0-2]\d:?[0-5]\d)?(?![0-9])"
)
# Random hex identifiers (32-digit UUIDs, the gateways' "pi_…" ids): a long run of hex digits with a
# letter among them holds digit runs that can pass the checks by chance; no one writes a card so.
_HEX_ID = re.compile(r"(?<![0-9A-Za-z])(?=[0-9A-Fa-f]*[A-Fa-f])[0-9A-Fa-f]{20,}(?![0-9A-Za-z])")
_OWN_FORMATS = (_UUID, _TIMESTAMP, _HEX_ID)


# What a digit adds to a Luhn sum when it is doubled.
_LUHN_DOUBLED = tuple(2 * d - 9 if 2 * d > 9 else 2 * d for d in range(10))
# No card network's prefix starts with 0, 1, 7 or 9.
_NETWORK_FIRST_DIGITS = frozenset("234568")


class _LuhnSums:
    """Luhn sums of every slice of one digit string in constant time, from prefix sums.

    In a slice ending at `end`, the digit at index i is doubled when it is an odd distance from
    the last digit, that is when i and `end` have the same parity; `by_parity[p]` sums the digits
    with those at indices of parity p doubled.
    """

    def __init__(self, digits: str) -> None:
        even, odd = [0], [0]
        for index, char in enumerate(digits):
            value = ord(char) - 48
            doubled = _LUHN_DOUBLED[value]
            even.append(even[-1] + (doubled if index % 2 == 0 else value))
            odd.append(odd[-1] + (value if index % 2 == 0 else doubled))
        self._by_parity = (even, odd)

    def valid(self, start: int, end: int) -> bool:
        sums = self._by_parity[end % 2]
        return (sums[end] - sums[start]) % 10 == 0


@lru_cache(maxsize=4096)
def _card_lengths(prefix: str) -> frozenset[int] | range:
    """How many digits a card starting with these 6 digits has, by its network (empty: none)."""
    two, three, four, six = int(prefix[:2]), int(prefix[:3]), int(prefix[:4]), int(prefix)
    if prefix[0] == "4":  # Visa
        return _VISA_LENGTHS
    if 51 <= two <= 55 or 222100 <= six <= 272099:  # Mastercard
        return _MASTERCARD_LENGTHS
    if two in (34, 37):  # American Express
        return _AMEX_LENGTHS
    if four == 6011 or two == 65 or 644 <= three <= 649 or 622126 <= six <= 622925:  # Discover
        return range(16, 20)
    if 3528 <= four <= 3589:  # JCB
        return range(16, 20)
    if 300 <= three <= 305 or two in (36, 38, 39) or four == 3095:  # Diners Club
        return range(14, 20)
    if two == 62 or two == 81:  # UnionPay
        return range(16, 20)
    return _NO_LENGTHS


_VISA_LENGTHS, _MASTERCARD_LENGTHS = frozenset({13, 16, 19}), frozenset({16})
_AMEX_LENGTHS, _NO_LENGTHS = frozenset({15}), frozenset[int]()


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


def _digit_count(text: str) -> int:
    return sum(map(text.count, "0123456789"))


def _card_spans(text: str) -> Iterator[tuple[int, int]]:
    """Spans of card numbers in `text`: whole groups of a run whose digits form a PAN.

    A card may sit beside other groups of the same run (its expiry "12" or CVC "123", a quantity
    before it), so every sequence of consecutive groups is tried; digits inside one unbroken group
    are never split, so long reference numbers do not yield accidental matches.
    """
    scanned, origin = _normalized(text)
    if _LETTERLESS_STRETCH.search(scanned) is None or _digit_count(scanned) < _MIN_DIGITS:
        return
    # Masking our own formats only breaks runs apart: with no run long enough before it (a
    # signature's hex, a timestamp and a port), there is none after, and the masking is skipped.
    if not any(
        run.end() - run.start() >= _MIN_DIGITS and _digit_count(run.group()) >= _MIN_DIGITS
        for run in _RUN.finditer(scanned)
    ):
        return
    for own_format in _OWN_FORMATS:
        scanned = own_format.sub(lambda m: "u" * len(m.group()), scanned)
    for run in _RUN.finditer(scanned):
        yield from _spans_in_run(run.start(), run.group(), origin)


def _spans_in_run(offset: int, run: str, origin: list[int] | None) -> Iterator[tuple[int, int]]:
    """The longest card at each start group of one run, in original-text coordinates."""
    groups = list(_GROUP.finditer(run))
    digits = "".join(group.group() for group in groups)
    if len(digits) < _MIN_DIGITS:
        # Too few digits in the whole run for any card (a timestamp, a port): no window to try.
        return
    ends = list(accumulate(len(group.group()) for group in groups))
    luhn = _LuhnSums(digits)
    first = 0
    while first < len(groups):
        start = ends[first] - len(groups[first].group())
        found = None
        lengths = _card_lengths(digits[start : start + 6]) if digits[start] in _NETWORK_FIRST_DIGITS else _NO_LENGTHS
        # No network starts with these digits: no window from this group can be a card.
        for last in range(first, len(groups) if lengths else first):
            length = ends[last] - start
            if length > _MAX_DIGITS:
                break
            if length in lengths and luhn.valid(start, ends[last]):
                found = last
        if found is None:
            first += 1
            continue
        begin, end = offset + groups[first].start(), offset + groups[found].end()
        yield (begin, end) if origin is None else (origin[begin], origin[end - 1] + 1)
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
