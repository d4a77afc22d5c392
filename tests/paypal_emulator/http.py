"""Reading request bodies the way PayPal's API does: malformed JSON is a 400 MALFORMED_REQUEST_JSON."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from tests.paypal_emulator.errors import api_error


async def read_json(request: Request, *, optional: bool = False) -> Any:
    raw = await request.body()
    if not raw and optional:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise api_error(400, "MALFORMED_REQUEST_JSON") from None
