"""The sandbox's HTTP endpoints, for the app to mount under `/sandbox` (never in production: the app decides).

`POST /tokens` is the one place a card number arrives (a browser's test card): it must never be logged,
kept or echoed; only the token's brand, last4 and behaviour survive; it is rate limited per client.
The 3-D Secure page is public, its form carries a per-challenge CSRF token. Every other route that
changes state (the JSON 3-D Secure shortcut, test disputes, the fault switches, the test clocks and,
given a webhook deliverer, its switches) needs a staff token: see route_guard.py.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from domain.money import Money
from gateways.sandbox.processor.errors import SandboxError, SandboxInvalidRequest, SandboxTimeout, SandboxUnavailable
from gateways.sandbox.processor.objects import IntentStatus, JsonDict, SandboxPaymentIntent
from gateways.sandbox.processor.processor import SandboxProcessor
from gateways.sandbox.processor.route_guard import STAFF_ONLY_MESSAGE, Handler, SandboxGuard
from gateways.sandbox.processor.webhook_delivery import WebhookDeliverer

_MAX_BODY = 16 * 1024
_FORM = "application/x-www-form-urlencoded"
_STALE_FORM = "This form did not come from this page, or is out of date: open the page again. Nothing changed."
_PAGE_STYLE = "body{font-family:sans-serif;max-width:32rem;margin:3rem auto}"
# Strict: no script at all, only our one stylesheet (by hash), forms post back to us, no framing.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(_PAGE_STYLE.encode()).digest()).decode()}'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class _BadRequest(Exception):
    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def sandbox_routes(
    processor: SandboxProcessor, deliverer: WebhookDeliverer | None = None, *, guard: SandboxGuard
) -> list[Route]:
    """The routes, with paths relative to the `/sandbox` mount (e.g. `/tokens`, `/authenticate/{pi_id}`).

    With a `deliverer`, `/webhooks/switches` flips its test switches too. `guard` locks them.
    """

    async def create_token(request: Request) -> Response:
        try:
            body = await _json_object(request)
            number = body.get("number")
            if not isinstance(number, str):
                raise _BadRequest("number must be a string.")
            token = await processor.tokenize_card(
                number, _int(body, "exp_month"), _int(body, "exp_year"), _string(body, "cvc")
            )
        except _BadRequest as exc:
            return _error(exc.status, "invalid_request", exc.message)
        except SandboxError as exc:
            return _processor_error(exc)
        return JSONResponse({"id": token.id, "brand": token.behaviour.brand, "last4": token.behaviour.last4})

    async def authentication_page(request: Request) -> Response:
        try:
            intent = await processor.retrieve(request.path_params["pi_id"])
        except SandboxError as exc:
            return _page("Sandbox 3-D Secure", f"<p>{html.escape(exc.message)}</p>", _status_for(exc)[0])
        return _page("Sandbox 3-D Secure", _authentication_body(intent, guard.form_token(intent.id)))

    async def authenticate(request: Request) -> Response:
        # The page's form proves itself with its CSRF token; anything else is a script, which needs staff.
        from_page = request.headers.get("content-type", "").startswith(_FORM)
        if not from_page and not guard.is_staff(request.headers.get("authorization")):
            return _error(403, "forbidden", STAFF_ONLY_MESSAGE)
        try:
            fields = await (_form(request) if from_page else _json_object(request))
            if from_page and not guard.form_token_matches(request.path_params["pi_id"], fields.get("csrf_token")):
                return _page("Sandbox 3-D Secure", f"<p>{_STALE_FORM}</p>", 403)
            outcome = fields.get("outcome")
            if outcome not in ("succeed", "fail"):
                raise _BadRequest("outcome must be 'succeed' or 'fail'.")
            intent = await processor.complete_authentication(request.path_params["pi_id"], succeed=outcome == "succeed")
        except _BadRequest as exc:
            return _error(exc.status, "invalid_request", exc.message)
        except SandboxError as exc:
            return _processor_error(exc)
        if not from_page:
            return JSONResponse({"id": intent.id, "status": intent.status.value})
        if intent.return_url is None:
            status = html.escape(intent.status.value)
            return _page("Sandbox 3-D Secure", f"<p>Done: the payment is now <b>{status}</b>.</p>")
        succeeded = intent.status in (IntentStatus.SUCCEEDED, IntentStatus.REQUIRES_CAPTURE)
        # Stripe's redirect parameters, so a shop's return page reads the sandbox like the real thing.
        target = _with_query(
            intent.return_url,
            payment_intent=intent.id,
            redirect_status="succeeded" if succeeded else "failed",
        )
        return RedirectResponse(target, status_code=303)

    async def arm_fault(request: Request) -> Response:
        try:
            body = await _json_object(request)
            mode, count = _string(body, "mode"), _int(body, "count")
            try:
                processor.arm_fault(mode, count)
            except ValueError as exc:
                raise _BadRequest(str(exc)) from None
        except _BadRequest as exc:
            return _error(exc.status, "invalid_request", exc.message)
        return JSONResponse({"mode": mode, "count": count})

    async def clear_faults(_request: Request) -> Response:
        processor.clear_faults()
        return Response(status_code=204)

    async def advance_clock(request: Request) -> Response:
        try:
            body = await _json_object(request)
            seconds = _int(body, "seconds")
            if seconds < 0:
                raise _BadRequest("The sandbox clock only moves forward: seconds must be >= 0.")
            now = await processor.advance_clock(seconds)
        except _BadRequest as exc:
            return _error(exc.status, "invalid_request", exc.message)
        except SandboxError as exc:
            return _processor_error(exc)
        return JSONResponse({"now": now})

    async def advance_customer_clock(request: Request) -> Response:
        try:
            body = await _json_object(request)
            seconds = _int(body, "seconds")
            if seconds < 0:
                raise _BadRequest("A test clock only moves forward: seconds must be >= 0.")
            now = await processor.billing.advance_customer_clock(request.path_params["customer_id"], seconds)
        except _BadRequest as exc:
            return _error(exc.status, "invalid_request", exc.message)
        except SandboxError as exc:
            return _processor_error(exc)
        return JSONResponse({"now": now})

    async def create_dispute(request: Request) -> Response:
        try:
            body = await _json_object(request)
            amount = None if body.get("amount") is None else _int(body, "amount")
            dispute = await processor.create_dispute(
                _string(body, "payment_intent"), _string(body, "reason") if "reason" in body else "general", amount
            )
        except _BadRequest as exc:
            return _error(exc.status, "invalid_request", exc.message)
        except SandboxError as exc:
            return _processor_error(exc)
        return JSONResponse(dispute.to_dict())

    async def close_dispute(request: Request) -> Response:
        try:
            body = await _json_object(request)
            won = body.get("won")
            if not isinstance(won, bool):
                raise _BadRequest("won must be a boolean.")
            dispute = await processor.close_dispute(request.path_params["dp_id"], won=won)
        except _BadRequest as exc:
            return _error(exc.status, "invalid_request", exc.message)
        except SandboxError as exc:
            return _processor_error(exc)
        return JSONResponse(dispute.to_dict())

    staff = guard.staff_only
    routes = [
        Route("/tokens", guard.rate_limited(create_token), methods=["POST"]),
        Route("/disputes", staff(create_dispute), methods=["POST"]),
        Route("/disputes/{dp_id}/close", staff(close_dispute), methods=["POST"]),
        Route("/authenticate/{pi_id}", authentication_page, methods=["GET"]),
        Route("/authenticate/{pi_id}", authenticate, methods=["POST"]),
        Route("/faults", staff(arm_fault), methods=["POST"]),
        Route("/faults", staff(clear_faults), methods=["DELETE"]),
        Route("/clock/advance", staff(advance_clock), methods=["POST"]),
        Route("/customers/{customer_id}/clock/advance", staff(advance_customer_clock), methods=["POST"]),
    ]
    if deliverer is not None:
        routes += _webhook_switch_routes(deliverer, staff)
    return routes


_SWITCHES = ("duplicate", "delay", "drop", "hold", "release")


def _webhook_switch_routes(deliverer: WebhookDeliverer, staff: Callable[[Handler], Handler]) -> list[Route]:
    """`POST /webhooks/switches` flips one switch per request; `DELETE` turns them all off (staff only)."""

    async def set_switch(request: Request) -> Response:
        try:
            body = await _json_object(request)
            named = [name for name in _SWITCHES if name in body]
            allowed = {*named, "reverse"} if named == ["release"] else set(named)
            if len(named) != 1 or set(body) - allowed:
                raise _BadRequest(
                    "Send exactly one of duplicate, delay, drop, hold or release (reverse goes with release)."
                )
            _flip(deliverer, named[0], body)
        except _BadRequest as exc:
            return _error(exc.status, "invalid_request", exc.message)
        return JSONResponse(deliverer.status())

    async def reset_switches(_request: Request) -> Response:
        deliverer.switches.reset()
        return JSONResponse(deliverer.status())

    return [
        Route("/webhooks/switches", staff(set_switch), methods=["POST"]),
        Route("/webhooks/switches", staff(reset_switches), methods=["DELETE"]),
    ]


def _flip(deliverer: WebhookDeliverer, name: str, body: JsonDict) -> None:
    switches = deliverer.switches
    try:
        if name == "duplicate":
            switches.duplicate(_int(body, "duplicate"))
        elif name == "delay":
            switches.delay(_number(body, "delay"))
        elif name == "drop":
            switches.drop(_int(body, "drop"))
        elif name == "hold":
            if body["hold"] is not True:
                raise _BadRequest("hold must be true (use release to stop holding).")
            switches.hold()
        else:
            reverse = body.get("reverse", False)
            if body["release"] is not True or not isinstance(reverse, bool):
                raise _BadRequest("release must be true, and reverse a boolean.")
            switches.release(reverse=reverse)
    except ValueError as exc:
        raise _BadRequest(str(exc)) from None


def _authentication_body(intent: SandboxPaymentIntent, form_token: str) -> str:
    amount = html.escape(str(Money(intent.amount, intent.currency)))
    intro = f"<p>Payment <code>{html.escape(intent.id)}</code> of <b>{amount}</b>.</p>"
    if intent.status is not IntentStatus.REQUIRES_ACTION:
        return intro + f"<p>Nothing to authenticate: the payment is {html.escape(intent.status.value)}.</p>"
    # No `action`: the form posts back to this very URL, wherever the app mounted the sandbox.
    return intro + (
        '<form method="post">'
        f'<input type="hidden" name="csrf_token" value="{html.escape(form_token)}">'
        '<button type="submit" name="outcome" value="succeed">Complete</button> '
        '<button type="submit" name="outcome" value="fail">Fail</button>'
        "</form>"
    )


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head>"
        "<body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status_code, headers=_PAGE_HEADERS)


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
    return urlunsplit(parts._replace(query=query))


def _error(status_code: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status_code)


def _status_for(exc: SandboxError) -> tuple[int, str]:
    if isinstance(exc, SandboxInvalidRequest):
        return (404 if exc.code == "resource_missing" else 400), exc.code
    if isinstance(exc, SandboxTimeout):
        return 504, "processor_timeout"
    if isinstance(exc, SandboxUnavailable):
        return 503, "processor_unavailable"
    return 400, "invalid_request"


def _processor_error(exc: SandboxError) -> JSONResponse:
    status_code, code = _status_for(exc)
    return _error(status_code, code, exc.message)


async def _body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_BODY:
            raise _BadRequest("The request body is too large.", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_object(request: Request) -> JsonDict:
    try:
        value = json.loads(await _body(request))
    except (ValueError, UnicodeDecodeError):
        # The decoder's message can quote the body, and the body may hold a card number: say nothing of it.
        raise _BadRequest("The body must be a JSON object.") from None
    if not isinstance(value, dict):
        raise _BadRequest("The body must be a JSON object.")
    return {str(key): item for key, item in value.items()}


async def _form(request: Request) -> JsonDict:
    # Parsed by hand: Starlette's form parser needs python-multipart, which PayQL does not install.
    try:
        pairs = parse_qsl((await _body(request)).decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise _BadRequest("The form is not valid UTF-8.") from None
    return dict(pairs)


def _int(body: JsonDict, name: str) -> int:
    value = body.get(name)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadRequest(f"{name} must be an integer.")
    return value


def _number(body: JsonDict, name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _BadRequest(f"{name} must be a number.")
    return float(value)


def _string(body: JsonDict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise _BadRequest(f"{name} must be a string.")
    return value
