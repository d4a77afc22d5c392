"""A small Razorpay API emulator for tests: a Starlette app served with uvicorn on a random local port.

Razorpay publishes no OpenAPI description. The shapes here are read from (a) the official SDK's source (`razorpay`
2.0.x: `client.py` for the base URL, basic auth and how error bodies are read; `resources/order.py`, `payment.py`,
`refund.py`, `dispute.py` for paths and verbs; `utility/utility.py` for the signatures), (b) the SDK repository's
test fixtures (github.com/razorpay/razorpay-python, `tests/mocks/`: `fake_order.json`, `fake_payment.json`,
`fake_captured_payment.json`, `fake_refund.json`, `payment_collection.json`, `dispute.json`, `dispute_contest.json`,
`dispute_accept.json`, `bad_request_error.json`, `fake_payment_authorized_webhook.json`; `tests/test_client_utility.py`
for the `order_id|payment_id` signature), and (c) Razorpay's API reference (razorpay.com/docs/api: orders
create/fetch-all with `receipt` and `expand[]=payments`, payments capture — the amount must equal the authorized
amount —, refunds with `speed`, disputes contest/accept, the error structure `{"error": {"code", "description",
"field", "source", "step", "reason", "metadata"}}`, and webhooks signed with `X-Razorpay-Signature`).

Reproduces:
- HTTP basic auth with the key id and secret; a bad key → 401 `BAD_REQUEST_ERROR` "The api key provided is invalid".
- Orders: create (amount in subunits, currency, receipt ≤ 40 characters, notes, `payment_capture`), fetch, fetch all
  (`receipt`, `from`, `to`, `count`, `skip`, `expand[]=payments`), an order's payments; status created → attempted
  (a payment was tried) → paid (a payment captured).
- Checkout (test-only, `/emulator/...`): the shopper pays an order; success answers what Checkout's `handler` hands
  the SPA (`razorpay_payment_id`, `razorpay_order_id`, `razorpay_signature` = hex HMAC-SHA256 of
  `order_id|payment_id` with the key secret), a decline answers what its `payment.failed` callback hands it (an
  `error` with `metadata.payment_id`/`order_id`) and leaves a `failed` payment; the order stays payable.
- Payments: fetch, fetch all (`from`, `to`, `count`, `skip`), capture (amount and currency must equal the authorized
  payment's, else 400; only an `authorized` payment), refund (`speed` normal; only a captured payment, at most the
  unrefunded rest; refund `processed`, or `pending` then processed by `settle_refunds()`), a payment's refunds.
- Disputes: opened on a captured payment (test-only), fetch, contest (evidence; `action: submit` moves it to
  under_review), accept (lost), and the outcome (`resolve_dispute`: won/lost).
- Webhooks: events POSTed to `webhook_url` with `X-Razorpay-Signature` (hex HMAC-SHA256 of the raw body with the
  webhook secret) and `X-Razorpay-Event-Id`: payment.authorized/captured/failed, order.paid, refund.created/
  processed/failed, payment.dispute.created/under_review/won/lost.
- Plans, subscriptions and their invoices (`subscriptions.py`): created → authenticated by the shopper in
  Checkout (test-only) → active with each cycle an invoice, order and payment; pending/halted on failed charges;
  update (plan from the cycle end, `retrieve_scheduled_changes`), cancel (now or at the cycle end), pause,
  resume; events subscription.authenticated/activated/charged/pending/halted/updated/paused/resumed/cancelled
  and invoice.paid.
- Faults: `fail_next(status, after_effect=, path=, method=)` answers a 5xx (optionally after the call took effect).

Does not reproduce: the real Checkout (methods, OTP, 3-D Secure), late authorization and the automatic refund of
payments left authorized past the capture window, instant refunds, rate limits, offers, transfers, add-ons,
Razorpay's own retry schedule and calendar billing periods (cycles are 1/7/30/365 days), subscription links and
customer notifications, dispute documents (evidence names document ids only), webhook retries.
"""

from tests.razorpay_emulator.app import RazorpayEmulator, running_emulator

__all__ = ["RazorpayEmulator", "running_emulator"]
