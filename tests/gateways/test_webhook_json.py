"""`webhook_object`: a signed body holding a NUL character anywhere (a key, a nested value) is
refused; text that only looks like the escape is not a NUL."""

from __future__ import annotations

import json

import pytest

from gateways.errors import WebhookRejected
from gateways.webhook_json import webhook_object


@pytest.mark.parametrize(
    "value",
    [{"note": "a\x00b"}, {"a\x00": 1}, {"data": {"object": {"items": [1, ["x", "\x00"]]}}}],
)
def test_a_nul_anywhere_in_the_body_is_refused(value: object) -> None:
    with pytest.raises(WebhookRejected, match="NUL"):
        webhook_object(json.dumps(value).encode())


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul() -> None:
    body = json.dumps({"note": "\\u0000"}).encode()
    assert b"\\\\u0000" in body
    assert webhook_object(body) == {"note": "\\u0000"}
