"""Parse untrusted JSON (request bodies, webhook deliveries) with its nesting bounded, before any recursion.

Python's decoder recurses once per level and raises RecursionError past about a thousand; code that
walks the result recurses too. `loads_bounded` counts the depth first with one linear scan, so a
hostile body costs a regular-expression pass and a clear `MalformedJson`, never a crash. Messages
name the problem and never quote the body (it may hold anything, a card number included).
"""

from __future__ import annotations

import json
import re

# A JSON string (skipped whole, so brackets inside it do not count) or one bracket. The closing quote
# is optional so that an unterminated string still matches to the end: the scan never backtracks and
# stays linear whatever the body.
_STRING_OR_BRACKET = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


class MalformedJson(ValueError):
    """The body is not JSON we accept; the message says why without quoting it."""


def nested_deeper_than(raw: bytes, max_depth: int) -> bool:
    """Whether the brackets of a JSON text (strings skipped) nest deeper than `max_depth`.

    Stops at the first level too deep, so a hostile body costs at most `max_depth` steps more than
    the brackets before it; garbage gets a rough count, which is all it needs.
    """
    # No more opening brackets in all (strings' included) than the bound: nothing can nest past it,
    # and two counts in C spare the scan (most events).
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(raw):
        token = match.group()
        if token == b"[" or token == b"{":
            depth += 1
            if depth > max_depth:
                return True
        elif token == b"]" or token == b"}":
            depth -= 1
    return False


def loads_bounded(raw: bytes | str, *, max_depth: int) -> object:
    """Decode UTF-8 JSON nested at most `max_depth` deep."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJson("The body is not valid UTF-8.") from None
    if nested_deeper_than(data, max_depth):
        raise MalformedJson(f"The JSON is nested more than {max_depth} levels deep.")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedJson("The body is not valid JSON.") from None
