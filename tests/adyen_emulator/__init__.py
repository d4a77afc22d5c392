"""A small Adyen Checkout emulator for tests: a Starlette app served with uvicorn on a random local port.

Built from Adyen's published OpenAPI descriptions (github.com/Adyen/adyen-openapi: `CheckoutService-v72.json`,
the version the pinned SDK calls, `DisputeService-v30.json`, and `Webhooks-v1.json` for notifications) and the
SDK's own source:
- `POST /v72/payments`: `paymentMethod` as Drop-in / Components hand it over (`type` "scheme" with the
  `encryptedCardNumber`, `encryptedExpiryMonth`, `encryptedExpiryYear`, `encryptedSecurityCode` fields, each
  "adyenjs_0_1_25$" + a key-sized base64 part + "$" + base64 of a label naming one of the emulator's cards, as
  long as Adyen Web's output and never a card number),
  `additionalData.manualCapture`, `captureDelayHours`, `metadata`, `reference`. Answers `resultCode` Authorised,
  Refused (with `refusalReason`/`refusalReasonCode`) or RedirectShopper with an `action` of type "redirect"
  (3-D Secure) whose `redirectResult` the shopper brings back; a clear `number` is refused (422, as Adyen refuses
  unencrypted card data for a merchant without PCI approval).
- Stored cards: `storePaymentMethod` with a `shopperReference` stores the card (`tokenization.storedPaymentMethodId`
  in the answer's and the notification's `additionalData`); `paymentMethod.storedPaymentMethodId` charges it for
  the same `shopperReference` only (else 422 "800" Contract not found), with a `recurringProcessingModel`.
- `POST /v72/payments/details` with `details.redirectResult` (or `threeDSResult`): Authorised or Refused.
- `POST /v72/payments/{pspReference}/captures|cancels|refunds`: always 201 `status: received` when the payment
  exists; the outcome comes later as a CAPTURE / CANCELLATION / REFUND notification item (success "false" with a
  `reason` when the capture exceeds the authorisation, the payment is captured (cancel), the refund exceeds what
  is left, or `fail_next(event_code)` asked for it).
- `X-API-Key` authentication (401 ServiceError `000 ... 901 Invalid Merchant Account`-style bodies) and the
  `Idempotency-Key` header: the same key (per merchant account) replays the stored answer; the same key with
  another body is 422 `errorCode` "704" (as Adyen documents for a key reused with another request).
- `lose_next_answer(path_part="")`: the next call (to a path containing `path_part`) takes effect but answers 500
  (a lost answer); the retry with the same Idempotency-Key gets the kept answer.
- Error bodies are Adyen's `ServiceError`: `{status, errorCode, message, errorType, pspReference}`.
- Notifications: every item is queued (`outbox`) signed the way Adyen signs them (HMAC-SHA256 in hex key over
  pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success, base64,
  in `additionalData.hmacSignature`); `take()` hands them to a test, `deliver(url)` POSTs them as one
  `{"live": "false", "notificationItems": [...]}` batch with HTTP Basic auth. Chargebacks: `chargeback()`.

- The Disputes API (`DisputeService-v30.json`): defense reasons, defense documents validated per reason and
  content type, defend and accept; see `disputes.py`. `defended(dispute)` shows what a test's dispute received.

Does not reproduce: `/sessions`, `/paymentMethods` (listing stored cards), real 3-D Secure 2 fingerprint and
challenge steps (one redirect stands for them), partial authorisations, delayed automatic capture, retries of
unacknowledged notifications, and any read of a payment (Adyen has none in Checkout).
"""

from tests.adyen_emulator.app import AdyenEmulator, running_emulator

__all__ = ["AdyenEmulator", "running_emulator"]
