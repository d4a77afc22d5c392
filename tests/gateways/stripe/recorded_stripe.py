"""A recorded-response stand-in for Stripe's API, for what localstripe cannot do (Prices with lookup keys,
meters, trials, schedules, invoice previews, Checkout Sessions, disputes).

The real SDK talks HTTP to it. Each route answers with a recorded Stripe object from
`tests/fixtures/stripe/api/<kind>.json` (Stripe's published example objects in the pinned API version,
with our ids set), changed as the test says; every request is kept, so a test can assert what the SDK sent
(form parameters, the `Idempotency-Key` header). An unrouted request gets Stripe's 404 `resource_missing`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from tests.gateways.stripe.servers import Answer, Receive, RecordedRequest, Scope, Send, _answer, _read

API_OBJECTS = Path(__file__).parents[2] / "fixtures" / "stripe" / "api"

Responder = Callable[[RecordedRequest], Answer]


def recorded(kind: str, **changes: Any) -> dict[str, Any]:
    """The recorded `kind` object with `changes` merged in (nested mappings merged, anything else replaced)."""
    obj: dict[str, Any] = json.loads((API_OBJECTS / f"{kind}.json").read_text())
    return merged(obj, changes)


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and value and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def listed(*objects: dict[str, Any], url: str = "/v1/list") -> dict[str, Any]:
    return {"object": "list", "data": list(objects), "has_more": False, "url": url}


def missing(message: str = "No such object") -> Answer:
    return Answer.json(
        404, {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": message}}
    )


def card_declined(decline_code: str = "insufficient_funds") -> Answer:
    return Answer.json(
        402,
        {
            "error": {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "message": "Your card was declined.",
            }
        },
    )


@dataclass
class RecordedStripe:
    """Routes `(method, path regex)` → an object or a responder; the latest registration wins."""

    routes: list[tuple[str, re.Pattern[str], Responder]] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)

    def on(self, method: str, path: str, answer: dict[str, Any] | Answer | Responder) -> None:
        if isinstance(answer, dict):
            body = answer
            responder: Responder = lambda _request: Answer.json(200, body)  # noqa: E731
        elif isinstance(answer, Answer):
            fixed = answer
            responder = lambda _request: fixed  # noqa: E731
        else:
            responder = answer
        self.routes.insert(0, (method, re.compile(f"{path}$"), responder))

    def sent(self, method: str, path: str) -> list[RecordedRequest]:
        """The requests that matched `method` and the `path` regex, in order."""
        pattern = re.compile(f"{path}$")
        return [r for r in self.requests if r.method == method and pattern.match(r.path)]

    def only(self, method: str, path: str) -> RecordedRequest:
        [request] = self.sent(method, path)
        return request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read(receive)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        query = scope["query_string"].decode()
        # Blank values matter here: Stripe unsets a field sent empty (`pause_collection=`).
        form = dict(parse_qsl(body.decode() if scope["method"] == "POST" else query, keep_blank_values=True))
        request = RecordedRequest(scope["method"], scope["path"], headers, form)
        self.requests.append(request)
        for method, pattern, responder in self.routes:
            if method == request.method and pattern.match(request.path):
                answer = responder(request)
                break
        else:
            answer = missing(f"no recorded answer for {request.method} {request.path}")
        await _answer(send, answer.status, answer.body, answer.content_type)
