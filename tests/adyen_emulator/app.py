"""`AdyenEmulator`: the Checkout routes, the notification outbox, and `running_emulator` to serve it in tests."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.adyen_emulator.disputes import DISPUTES_PATH, OPERATIONS, DisputeService, EmulatedDispute, Reasons
from tests.adyen_emulator.errors import ServiceError, psp_reference
from tests.adyen_emulator.signing import signed
from tests.asgi_server import serving

VERSION = "v72"
# Adyen Web's client-side encryption output: this prefix, the base64 of an RSA-2048-encrypted key, "$", and the
# base64 of the encrypted field (about 700 characters each, so a card's four fields make kilobytes of JSON). The
# emulator's "encryption" keeps the first part random and the last part the base64 of a card label: a test never
# carries a card number (PayQL's edge refuses anything that looks like one).
ENCRYPTION_PREFIX = "adyenjs_0_1_25$"


def encrypted(label: str) -> str:
    wrapped_key = base64.b64encode(hashlib.sha512(label.encode()).digest() * 4).decode()
    return f"{ENCRYPTION_PREFIX}{wrapped_key}${base64.b64encode(label.encode()).decode()}"


def decrypted(value: object) -> str | None:
    if not isinstance(value, str) or not value.startswith(ENCRYPTION_PREFIX) or value.count("$") != 2:
        return None
    try:
        return base64.b64decode(value.rsplit("$", 1)[1], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None


# The cards the emulator knows (what each "encrypted" number stands for).
AUTHORISED_CARD = encrypted("visa-authorised")
REFUSED_CARD = encrypted("visa-refused")
NO_BALANCE_CARD = encrypted("visa-not-enough-balance")
THREE_DS_CARD = encrypted("visa-3ds2-challenge")
THREE_DS_REFUSED_CARD = encrypted("visa-3ds2-challenge-failed")
_REFUSALS = {REFUSED_CARD: ("Refused", "2"), NO_BALANCE_CARD: ("Not enough balance", "12")}
_KNOWN = frozenset({AUTHORISED_CARD, REFUSED_CARD, NO_BALANCE_CARD, THREE_DS_CARD, THREE_DS_REFUSED_CARD})


def card(payment_method: dict[str, Any]) -> dict[str, Any]:
    """What Drop-in / Components send for a card: only encrypted fields (a raw number is refused)."""
    return {
        "type": "scheme",
        "encryptedCardNumber": AUTHORISED_CARD,
        "encryptedExpiryMonth": encrypted("03"),
        "encryptedExpiryYear": encrypted("2030"),
        "encryptedSecurityCode": encrypted("737"),
        **payment_method,
    }


@dataclass
class Payment:
    psp: str
    merchant_reference: str
    value: int
    currency: str
    manual: bool
    metadata: dict[str, str]
    authorised: bool = False
    captured: int = 0
    refunded: int = 0
    cancelled: bool = False
    redirect_result: str | None = None
    challenge_fails: bool = False


@dataclass
class AdyenEmulator:
    api_key: str = field(default_factory=lambda: f"AQE-{secrets.token_hex(12)}")
    merchant_account: str = "PayQLTestMerchant"
    hmac_key: str = field(default_factory=lambda: secrets.token_hex(32).upper())
    notification_user: str = "adyen-notifications"
    notification_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    base_url: str = ""
    payments: dict[str, Payment] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    # (merchant account, Idempotency-Key) → (request fingerprint, status, answer)
    idempotent: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # path, Idempotency-Key
    failing: set[str] = field(default_factory=set)
    disputes: dict[str, str] = field(default_factory=dict)  # payment PSP reference → its dispute's
    # The Disputes API also takes HTTP Basic with a web service user (the spec's BasicAuth scheme).
    ws_user: str = "ws@Company.PayQL"
    ws_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    stored: dict[tuple[str, str], str] = field(default_factory=dict)  # (shopperReference, token) → the card
    losing_answer: str | None = None  # the path part whose next answer is lost ("" any)

    def __post_init__(self) -> None:
        routes = [
            Route(f"/{VERSION}/payments", self._route(self._payments), methods=["POST"]),
            Route(f"/{VERSION}/payments/details", self._route(self._details), methods=["POST"]),
        ]
        for kind in ("captures", "cancels", "refunds"):
            routes.append(
                Route(f"/{VERSION}/payments/{{psp}}/{kind}", self._route(self._modification), methods=["POST"])
            )
        self.dispute_service = DisputeService(self.merchant_account)
        for operation in OPERATIONS:
            handler = self._route(self.dispute_service.handle, basic_auth=True)
            routes.append(Route(f"{DISPUTES_PATH}/{operation}", handler, methods=["POST"]))
        self.app = Starlette(routes=routes)

    @property
    def api_base(self) -> str:
        return self.base_url

    # --- test controls --------------------------------------------------------------------------------------
    def lose_next_answer(self, path_part: str = "") -> None:
        """The next API call (whose path contains `path_part`) takes effect (and its answer is kept for its
        Idempotency-Key), but the caller gets a 500 instead: a lost answer, which only a retry with the same key
        recovers."""
        self.losing_answer = path_part

    def fail_next(self, event_code: str) -> None:
        """The next CAPTURE / CANCELLATION / REFUND request is accepted, and its notification says it failed."""
        self.failing.add(event_code)

    def take(self) -> list[dict[str, Any]]:
        """The queued notification items (each `{"NotificationRequestItem": ...}`), removed from the outbox."""
        items, self.outbox = self.outbox, []
        return items

    def body(self, items: list[dict[str, Any]]) -> bytes:
        return json.dumps({"live": "false", "notificationItems": items}).encode()

    def basic_auth(self, user: str | None = None, password: str | None = None) -> str:
        pair = f"{user or self.notification_user}:{password or self.notification_password}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    async def deliver(self, url: str) -> httpx.Response:
        """POST the queued items as one batch to `url`, as Adyen does (Basic auth, JSON)."""
        async with httpx.AsyncClient() as client:
            return await client.post(
                url,
                content=self.body(self.take()),
                headers={"Authorization": self.basic_auth(), "Content-Type": "application/json"},
            )

    def chargeback(
        self,
        psp: str,
        event_code: str = "CHARGEBACK",
        *,
        dispute_status: str = "Undefended",
        defense_reasons: Reasons | None = None,
    ) -> str:
        """A dispute event on a payment (NOTIFICATION_OF_CHARGEBACK, CHARGEBACK, CHARGEBACK_REVERSED, ...); every
        event of one payment's dispute carries the same dispute PSP reference, which is returned. The first one
        opens the dispute in the Disputes API, with `defense_reasons` (default: the spec's example reasons)."""
        payment = self.payments[psp]
        dispute = self.disputes.setdefault(psp, psp_reference())
        if dispute not in self.dispute_service.disputes:
            opened = EmulatedDispute(dispute, psp)
            if defense_reasons is not None:
                opened.reasons = defense_reasons
            self.dispute_service.disputes[dispute] = opened
        extra = {
            "chargebackReasonCode": "10.4",
            "chargebackSchemeCode": "visa",
            "disputeStatus": dispute_status,
            "defensePeriodEndsAt": "2030-01-31T12:00:00+01:00",
            "defendable": "true",
        }
        self._notify(event_code, dispute, payment, payment.value, True, original=psp, reason="Fraud", extra=extra)
        return dispute

    # --- routes ---------------------------------------------------------------------------------------------
    def defended(self, dispute: str) -> EmulatedDispute:
        """The Disputes API's copy of a dispute: its supplied documents and the reason it was defended with."""
        return self.dispute_service.disputes[dispute]

    def _authenticated(self, request: Request, basic_auth: bool) -> bool:
        if request.headers.get("x-api-key") == self.api_key:
            return True
        return basic_auth and request.headers.get("authorization") == self.basic_auth(self.ws_user, self.ws_password)

    def _route(
        self,
        handler: Callable[[Request, dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]],
        *,
        basic_auth: bool = False,
    ) -> Any:
        async def endpoint(request: Request) -> Response:
            key = request.headers.get("idempotency-key")
            self.requests.append((request.url.path, key))
            try:
                if not self._authenticated(request, basic_auth):
                    raise ServiceError(401, "000", "HTTP Status Response - Unauthorized", "security")
                raw = await request.body()
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise ServiceError(400, "702", "Structure of request is invalid") from None
                if not isinstance(body, dict):
                    raise ServiceError(400, "702", "Structure of request is invalid")
                fingerprint = hashlib.sha256(request.url.path.encode() + raw).hexdigest()
                stored = self.idempotent.get((self.merchant_account, key)) if key else None
                if stored is not None:
                    if stored[0] != fingerprint:
                        raise ServiceError(422, "704", "request already processed or in progress")
                    return JSONResponse(stored[2], status_code=stored[1])
                status, answer = await handler(request, body)
                if key:
                    self.idempotent[(self.merchant_account, key)] = (fingerprint, status, answer)
                if self.losing_answer is not None and self.losing_answer in request.url.path:
                    self.losing_answer = None
                    raise ServiceError(500, "000", "An unknown error occurred", "internal")
                return JSONResponse(answer, status_code=status)
            except ServiceError as error:
                return JSONResponse(error.body, status_code=error.body["status"])

        return endpoint

    async def _payments(self, request: Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for required in ("amount", "merchantAccount", "paymentMethod", "reference", "returnUrl"):
            if required not in body:
                raise ServiceError(422, "14_0", f"Required field '{required}' is not provided.")
        if body["merchantAccount"] != self.merchant_account:
            raise ServiceError(403, "901", "Invalid Merchant Account", "security")
        method = body["paymentMethod"]
        if not isinstance(method, dict) or method.get("type") != "scheme":
            raise ServiceError(422, "14_004", "Missing payment method details")
        if "number" in method:
            raise ServiceError(422, "181", "Unencrypted card data is not allowed for this merchant account")
        shopper = body.get("shopperReference")
        if "storedPaymentMethodId" in method:
            encrypted_number = self.stored.get((str(shopper), str(method["storedPaymentMethodId"])))
            if encrypted_number is None:
                raise ServiceError(422, "800", "Contract not found")
            if body.get("recurringProcessingModel") is None:
                raise ServiceError(422, "14_012", "Required field 'recurringProcessingModel' is not provided.")
        else:
            encrypted_number = method.get("encryptedCardNumber")
            if decrypted(encrypted_number) is None or encrypted_number not in _KNOWN:
                raise ServiceError(422, "174", "Unable to decrypt data")
        tokenization: dict[str, str] = {}
        if body.get("storePaymentMethod") is True:
            if not shopper:
                raise ServiceError(422, "130", "Required field 'shopperReference' is not provided.")
            token = psp_reference()
            self.stored[(str(shopper), token)] = str(encrypted_number)
            tokenization = {"tokenization.storedPaymentMethodId": token, "tokenization.shopperReference": str(shopper)}
        amount = body["amount"]
        additional = body.get("additionalData") or {}
        payment = Payment(
            psp=psp_reference(),
            merchant_reference=str(body["reference"]),
            value=int(amount["value"]),
            currency=str(amount["currency"]),
            manual=str(additional.get("manualCapture", "")).lower() == "true",
            metadata={str(k): str(v) for k, v in (body.get("metadata") or {}).items()},
        )
        self.payments[payment.psp] = payment
        if encrypted_number in (THREE_DS_CARD, THREE_DS_REFUSED_CARD):
            payment.challenge_fails = encrypted_number == THREE_DS_REFUSED_CARD
            payment.redirect_result = secrets.token_urlsafe(16)
            action = {
                "type": "redirect",
                "method": "GET",
                "paymentMethodType": "scheme",
                "url": f"{self.base_url}/threeds2/challenge?psp={payment.psp}&redirectResult={payment.redirect_result}",
            }
            return 200, {"resultCode": "RedirectShopper", "action": action, "pspReference": payment.psp}
        return 200, self._authorise(payment, refusal=_REFUSALS.get(str(encrypted_number)), tokenization=tokenization)

    async def _details(self, request: Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        details = body.get("details")
        if not isinstance(details, dict):
            raise ServiceError(422, "14_0", "Required field 'details' is not provided.")
        given = details.get("redirectResult") or details.get("threeDSResult")
        payment = next((p for p in self.payments.values() if given and p.redirect_result == given), None)
        if payment is None:
            raise ServiceError(422, "101", "Invalid redirectResult")
        payment.redirect_result = None  # spent: a second submission of the same result is refused
        refusal = ("3D Not Authenticated", "11") if payment.challenge_fails else None
        return 200, self._authorise(payment, refusal=refusal)

    async def _modification(self, request: Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        kind = request.url.path.rsplit("/", 1)[-1]
        payment = self.payments.get(request.path_params["psp"])
        if payment is None:
            raise ServiceError(422, "167", "Original pspReference required for this operation")
        if body.get("merchantAccount") != self.merchant_account:
            raise ServiceError(403, "901", "Invalid Merchant Account", "security")
        psp = psp_reference()
        answer: dict[str, Any] = {
            "merchantAccount": self.merchant_account,
            "paymentPspReference": payment.psp,
            "pspReference": psp,
            "status": "received",
        }
        if "reference" in body:
            answer["reference"] = body["reference"]
        if kind == "cancels":
            ok = payment.authorised and not payment.captured and not payment.cancelled
            ok = self._outcome("CANCELLATION", ok)
            payment.cancelled = payment.cancelled or ok
            self._notify("CANCELLATION", psp, payment, payment.value, ok, original=payment.psp)
            return 201, answer
        amount = body.get("amount") or {}
        value = int(amount.get("value", 0))
        if amount.get("currency") != payment.currency:
            raise ServiceError(422, "137", "Invalid amount specified")
        answer["amount"] = {"value": value, "currency": payment.currency}
        if kind == "captures":
            left = payment.value - payment.captured
            ok = self._outcome(
                "CAPTURE", payment.authorised and not payment.cancelled and payment.captured == 0 and 0 < value <= left
            )
            payment.captured += value if ok else 0
            self._notify("CAPTURE", psp, payment, value, ok, original=payment.psp)
        else:
            ok = self._outcome("REFUND", 0 < value <= payment.captured - payment.refunded)
            payment.refunded += value if ok else 0
            self._notify("REFUND", psp, payment, value, ok, original=payment.psp)
        return 201, answer

    # --- plumbing -------------------------------------------------------------------------------------------
    def _outcome(self, event_code: str, ok: bool) -> bool:
        if event_code in self.failing:
            self.failing.discard(event_code)
            return False
        return ok

    def _authorise(
        self, payment: Payment, *, refusal: tuple[str, str] | None, tokenization: dict[str, str] | None = None
    ) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "pspReference": payment.psp,
            "merchantReference": payment.merchant_reference,
            "amount": {"value": payment.value, "currency": payment.currency},
        }
        if refusal is not None:
            self._notify("AUTHORISATION", payment.psp, payment, payment.value, False, reason=refusal[0])
            return {**answer, "resultCode": "Refused", "refusalReason": refusal[0], "refusalReasonCode": refusal[1]}
        payment.authorised = True
        if not payment.manual:
            payment.captured = payment.value  # immediate automatic capture: no CAPTURE notification follows
        self._notify("AUTHORISATION", payment.psp, payment, payment.value, True, extra=tokenization)
        return {**answer, "resultCode": "Authorised", "additionalData": {"authCode": "064500", **(tokenization or {})}}

    def _notify(
        self,
        event_code: str,
        psp: str,
        payment: Payment,
        value: int,
        success: bool,
        *,
        original: str | None = None,
        reason: str = "",
        extra: dict[str, str] | None = None,
    ) -> None:
        item: dict[str, Any] = {
            "amount": {"value": value, "currency": payment.currency},
            "eventCode": event_code,
            "eventDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            "merchantAccountCode": self.merchant_account,
            "merchantReference": payment.merchant_reference,
            "paymentMethod": "visa",
            "pspReference": psp,
            "reason": reason,
            "success": "true" if success else "false",
            "additionalData": {
                **{f"metadata.{key}": value for key, value in payment.metadata.items()},
                **(extra or {}),
            },
        }
        if original is not None:
            item["originalReference"] = original
        self.outbox.append({"NotificationRequestItem": signed(item, self.hmac_key)})


@asynccontextmanager
async def running_emulator(emulator: AdyenEmulator | None = None) -> AsyncIterator[AdyenEmulator]:
    """Serve an emulator with uvicorn on a random local port in the running loop; `base_url` is set inside."""
    emulator = emulator or AdyenEmulator()
    async with serving(emulator.app) as base_url:
        emulator.base_url = base_url
        yield emulator
