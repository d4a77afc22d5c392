"""The locks on the sandbox's HTTP routes: who may drive its controls, the 3-D Secure form's CSRF
tokens, and the gate in front of tokenization.

The app decides what a staff caller is and how fast a client may tokenize (this package reads no
settings and verifies no tokens); this module only applies those decisions. A refused request must
change nothing, so every check runs before the handler reads its body.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Handler = Callable[[Request], Awaitable[Response]]

STAFF_ONLY_MESSAGE = "Sandbox controls need a staff token: Authorization: Bearer <token with the admin role>."


@dataclass(frozen=True)
class SandboxGuard:
    """`is_staff` judges an Authorization header; `form_key` (secret, stable across the installation's
    processes) signs the 3-D Secure page's per-challenge tokens; `admit_tokenization` takes a client
    address and answers None to let it tokenize, or how many seconds it must wait."""

    is_staff: Callable[[str | None], bool]
    form_key: bytes
    admit_tokenization: Callable[[str], Awaitable[int | None]]

    def form_token(self, challenge_id: str) -> str:
        """The CSRF token of one challenge's form: only a page this sandbox served can carry it."""
        return hmac.new(self.form_key, b"3ds-form:" + challenge_id.encode(), hashlib.sha256).hexdigest()

    def form_token_matches(self, challenge_id: str, candidate: object) -> bool:
        if not isinstance(candidate, str) or not candidate.isascii():
            return False
        return hmac.compare_digest(self.form_token(challenge_id), candidate)

    def staff_only(self, handler: Handler) -> Handler:
        """The handler, answering 403 (having read nothing) to a caller without a staff token."""

        async def guarded(request: Request) -> Response:
            if not self.is_staff(request.headers.get("authorization")):
                return JSONResponse({"error": {"code": "forbidden", "message": STAFF_ONLY_MESSAGE}}, status_code=403)
            return await handler(request)

        return guarded

    def rate_limited(self, handler: Handler) -> Handler:
        """The handler, answering 429 with Retry-After to a client over its tokenization limit."""

        async def limited(request: Request) -> Response:
            client = request.client.host if request.client else "unknown"
            wait = await self.admit_tokenization(client)
            if wait is not None:
                message = f"Too many tokenization requests from this address; retry in {wait} seconds."
                return JSONResponse(
                    {"error": {"code": "rate_limited", "message": message}},
                    status_code=429,
                    headers={"Retry-After": str(wait)},
                )
            return await handler(request)

        return limited
