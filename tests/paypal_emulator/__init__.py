"""A small PayPal REST emulator for tests: a Starlette app served with uvicorn on a random local port.

Reproduces (shapes, status codes and error bodies checked against the OpenAPI descriptions in
`../shared/reference/paypal`, from the repository root):
- OAuth2 client credentials: `POST /v1/oauth2/token` with HTTP basic auth; tokens expire after `token_ttl`
  (and `expire_tokens()` revokes them all); an unknown/expired bearer token → 401 `{"error": "invalid_token"}`,
  bad client credentials → 401 `invalid_client`.
- Orders v2: create (intent CAPTURE|AUTHORIZE, one purchase unit with amount, custom_id, invoice_id), get,
  capture, authorize; status CREATED → APPROVED (buyer approval) → COMPLETED; HATEOAS links (`approve` points
  at the emulator's `/checkoutnow?token=` page); `purchase_units[0].payments` with authorizations, captures and
  refunds; 422 bodies `UNPROCESSABLE_ENTITY` with `details[].issue` ORDER_NOT_APPROVED, ORDER_ALREADY_CAPTURED,
  ORDER_ALREADY_AUTHORIZED, ACTION_DOES_NOT_MATCH_INTENT, INSTRUMENT_DECLINED (the order goes back to CREATED and
  the error carries a `redirect` link), PAYER_ACTION_REQUIRED, DUPLICATE_INVOICE_ID (a second completed order
  with the same invoice_id); 404 RESOURCE_NOT_FOUND / INVALID_RESOURCE_ID; 400 INVALID_REQUEST.
- Payments v2: authorization capture (amount, final_capture; PARTIALLY_CAPTURED → CAPTURED; over the remaining
  amount → MAX_CAPTURE_AMOUNT_EXCEEDED), void (204, or 200 with `Prefer: return=representation`;
  PREVIOUSLY_CAPTURED / PREVIOUSLY_VOIDED), reauthorize, get authorization/capture, refund (full or partial;
  capture PARTIALLY_REFUNDED → REFUNDED; beyond the refundable rest → REFUND_AMOUNT_EXCEEDED, then
  CAPTURE_FULLY_REFUNDED).
- `PayPal-Request-Id` idempotency on every POST: the same id on the same path replays the stored answer.
- Negative testing: the `PayPal-Mock-Response: {"mock_application_codes": "INSTRUMENT_DECLINED"}` header, as the
  sandbox honours it, and `decline_next(issue)`; `fail_next(status, after_effect=, delay=, path=)` for
  429/5xx answers (optionally after the call took effect, i.e. a lost answer) and slow answers (timeouts).
- Webhooks: an RSA signing key whose certificate is issued by a test intermediate and root CA made at start;
  PAYPAL-CERT-URL serves leaf + intermediate (tests trust the root, `signer.ca_pem()`; `signer.reissue` serves a
  self-signed, foreign-CA or expired one instead); events (CHECKOUT.ORDER.APPROVED/COMPLETED,
  PAYMENT.CAPTURE.COMPLETED/REFUNDED, PAYMENT.AUTHORIZATION.CREATED/VOIDED, BILLING.SUBSCRIPTION.*,
  PAYMENT.SALE.COMPLETED/DENIED/REFUNDED, CUSTOMER.DISPUTE.CREATED/UPDATED/RESOLVED) POSTed to `webhook_url` with
  PAYPAL-TRANSMISSION-ID/-TIME/-SIG, PAYPAL-CERT-URL and PAYPAL-AUTH-ALGO (SHA256withRSA over
  `transmission_id|transmission_time|webhook_id|crc32(body)`), and `POST /v1/notifications/verify-webhook-signature`.
  Refund resources name their capture only (the `up` link) and echo the refund's `custom_id`, as PayPal's do.
- Catalog products, billing plans, subscriptions with buyer approval, billing cycles and their v1 sales: see
  `subscriptions.py`. Disputes on captures with evidence: see `disputes.py`.

Does not reproduce: a real buyer login or funding choice, multiple purchase units, PATCH, confirm-payment-source,
vaulting, cards/3-D Secure, PENDING captures (eChecks, review holds), the 115% over-capture allowance, honouring
window and authorization expiry, reversals (no PAYMENT.CAPTURE.REVERSED/DENIED is ever sent), webhook retries and
the webhooks management API (one webhook is registered in-process), Transaction Search, and rate limits other
than injected ones.
"""

from tests.paypal_emulator.app import Fault, PayPalEmulator, running_emulator

__all__ = ["Fault", "PayPalEmulator", "running_emulator"]
