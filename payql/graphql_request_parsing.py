"""How /graphql reads a request's JSON: bounded nesting, strict UTF-8, and a body that is an object.

Mixed into the Strawberry view ahead of it, replacing only the hooks that decode JSON: HTTP bodies
(`parse_json`) and websocket messages (`decode_json`). A malformed body is answered 400 with a
message that names the problem and never quotes the body; nothing in it reaches a resolver.
"""

from __future__ import annotations

import json

from cross_web import HTTPException

from domain.bounded_json import MalformedJson, loads_bounded

# Our deepest legitimate request (variables → input → items → item) is a handful of levels.
MAX_JSON_DEPTH = 32


class BoundedJsonParsing:
    def parse_json(self, data: str | bytes) -> object:
        """An HTTP body (or a query-string parameter): a JSON object, or a list for batching to refuse."""
        try:
            value = loads_bounded(data, max_depth=MAX_JSON_DEPTH)
        except MalformedJson as exc:
            raise HTTPException(400, str(exc)) from None
        if not isinstance(value, dict | list):
            raise HTTPException(400, "The request body must be a JSON object.")
        return value

    def decode_json(self, data: str | bytes) -> object:
        """A websocket message: Strawberry closes the socket (4400) on a JSONDecodeError."""
        try:
            return loads_bounded(data, max_depth=MAX_JSON_DEPTH)
        except MalformedJson as exc:
            raise json.JSONDecodeError(str(exc), "", 0) from None
