"""A small Square Connect API v2 emulator for tests: a Starlette app served with uvicorn on a random local port.

Built from Square's published API description (github.com/square/connect-api-specification, `api.json`, release
2025-08-20) and the `squareup` SDK's sources, and reproduces for the endpoints PayQL uses:
- Bearer access tokens, one per merchant; a Square account is in one country and takes one currency, so there are
  two: a US merchant (USD) and a Japanese one (JPY). Anything else: 401 AUTHENTICATION_ERROR / UNAUTHORIZED.
- Payments: CreatePayment (`source_id`, `amount_money`, `autocomplete`, `reference_id` <= 40, `note` <= 500,
  `location_id`; the currency must be the location's), GetPayment, ListPayments (`begin_time`, `end_time`,
  `sort_order`, `location_id`, `limit` <= 100 and `cursor` pages), UpdatePayment (amount down/up on an APPROVED
  payment, as its `capabilities` allow: none for sellers in Japan), CompletePayment (optional `version_token`,
  VERSION_MISMATCH), CancelPayment. Statuses APPROVED → COMPLETED | CANCELED, or FAILED, with `card_details.status`
  AUTHORIZED | CAPTURED | VOIDED | FAILED.
- Square's sandbox test tokens: `cnon:card-nonce-ok` approves; `cnon:card-nonce-declined` (GENERIC_DECLINE),
  `-rejected-cvv` (CVV_FAILURE), `-rejected-postalcode` (ADDRESS_VERIFICATION_FAILURE), `-rejected-expiration`
  (INVALID_EXPIRATION) are declined: HTTP 402, category PAYMENT_METHOD_ERROR, the FAILED payment in the body;
  `-already-used` is a 400 CARD_TOKEN_USED. `decline_next(code)` declines the next approving token with any code.
- Buyer verification (SCA): `sca_nonce()` mints a token whose issuer requires it, `verify_buyer(token)` the
  verification token the Web Payments SDK's verifyBuyer would give for it. CreatePayment and CreateCard decline
  such a card without `verification_token` (PAYMENT_METHOD_ERROR CARD_DECLINED_VERIFICATION_REQUIRED: 402 with the
  FAILED payment, 400 for a card), refuse a token verifyBuyer did not give for that very source (400
  INVALID_VALUE, field verification_token), and record the token on the payment or card.
- Refunds: RefundPayment answers PENDING, then the refund settles COMPLETED (only completed refunds count in the
  payment's `refunded_money`), at once by default, or when a test calls `ledger.settle_refund(id, status)` with
  `ledger.hold_refunds`; REFUND_ALREADY_PENDING, REFUND_AMOUNT_INVALID, REFUND_ERROR_PAYMENT_NEEDS_COMPLETION.
  GetPaymentRefund.
- Disputes (opened by a test with `ledger.open_dispute`): GetDispute, CreateDisputeEvidenceText, SubmitEvidence
  (EVIDENCE_REQUIRED → PROCESSING), the bank's decision with `ledger.resolve_dispute(id, "WON" | "LOST")`.
- Recurring billing (`billing.py`): CreateCustomer (a name, email or phone required), CreateCard from a test token
  (a declining token is refused with its PAYMENT_METHOD_ERROR, the card is not stored), UpsertCatalogObject and
  RetrieveCatalogObject for SUBSCRIPTION_PLAN and SUBSCRIPTION_PLAN_VARIATION (STATIC phases in the merchant's
  currency), SearchCatalogObjects (`object_types`, `exact_query` on `name`), CreateSubscription (card on file,
  `start_date`: PENDING until then), RetrieveSubscription (`include=actions`), UpdateSubscription (`card_id`),
  CancelSubscription and SwapPlan (scheduled for the charged-through date), GetInvoice. Each period is an invoice
  charged at once to the card on file through CreatePayment with the invoice's `order_id` (declined with
  `decline_next`); CreatePayment with an open invoice's `order_id` and the amount owed pays it. Time does not pass:
  `billing.renew(subscription_id)` ends the period (due actions, then the next invoice).
- Idempotency on CreatePayment, UpdatePayment, RefundPayment, CreateDisputeEvidenceText, CreateCustomer,
  CreateCard, UpsertCatalogObject and CreateSubscription: the same key with the same body replays the first answer
  (errors included); with another body it is 400 IDEMPOTENCY_KEY_REUSED. Keys longer than 45 characters (128 for
  the Catalog) are VALUE_TOO_LONG.
- Error bodies `{"errors": [{"category", "code", "detail", "field"}]}`; `fail_next(status, after_effect=, path=)`
  for 429/5xx answers (optionally after the call took effect: a lost answer).
- Webhooks: payment.created/updated, refund.created/updated, dispute.created, dispute.evidence.created,
  dispute.state.updated, subscription.created/updated, invoice.created/published/payment_made/
  scheduled_charge_failed, POSTed to `webhook_url` signed with `x-square-hmacsha256-signature` =
  base64(HMAC-SHA256(signature key, notification URL + body)); `rotate_signature_key()`.

Does not reproduce: OAuth, locations/merchants APIs, the Orders API (an order id is made up per payment or
invoice), tips, app fees, the delay window running out, gift cards, bank transfers and wallets, the 3-D Secure
challenge itself, webhook retries, eventual consistency of ListPayments, rate limits other than injected ones,
catalog items and other object types, plan phases beyond the first, pausing subscriptions, invoices not made by a
subscription, Square's own emails.
"""

from tests.square_emulator.app import Fault, SquareEmulator, running_emulator

__all__ = ["Fault", "SquareEmulator", "running_emulator"]
