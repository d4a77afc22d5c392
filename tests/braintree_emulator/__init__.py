"""A small Braintree gateway emulator for tests: a Starlette app served with uvicorn on a random local port.

Speaks the XML-over-HTTP protocol the official SDK (`braintree` 4.48) sends, read from the SDK's `util/http.py`,
`util/xml_util.py` and its `*_gateway.py` modules (paths, verbs, element names, the 422 api-error-response with
nested validation errors and the failed transaction inside):
- `POST /merchants/<id>/client_token`; transactions: `sale` (`POST /transactions`, with `options.
  submit_for_settlement` and `options.three_d_secure.required`), find, `submit_for_settlement` (for the whole or a
  lower amount: the transaction's amount becomes the settled one, its `status_history` keeps the authorized one),
  void (authorized or submitted_for_settlement), refund (a `credit` transaction naming its `refunded_transaction_id`;
  only settled or settling transactions, up to what is left), the sandbox's settlement batch (`PUT .../settle`,
  the SDK's `testing.settle_transaction`), and `advanced_search_ids` /
  `advanced_search` by ids, order_id, type and created_at.
- The sandbox's test nonces, from the SDK's `braintree/test/nonces.py`: `fake-valid-*` (and the wallets) approve;
  `fake-processor-declined-*-nonce` decline with 2000 Do Not Honor; `fake-processor-failure-jcb-nonce` fails with
  3000; `fake-gateway-rejected-fraud-nonce` / `-risk-thresholds-` are gateway_rejected; `fake-consumed-nonce`,
  `fake-luhn-invalid-nonce` and unknown nonces are validation errors (91564, 81715, 91565); with 3-D Secure
  required, a nonce whose 3-D Secure result did not shift liability is gateway_rejected `three_d_secure`.
- Merchant accounts, one currency each (`payql_usd`, `payql_jpy`); another id is 91513.
- Disputes: find, text evidence, finalize (open → disputed; else 95701 / 95705); test-only routes open one on a
  transaction and decide it (won, lost, ...).
- Vault and recurring billing (`billing.py`): customers, payment methods vaulted from nonces (found by token),
  plans made in the Control Panel (`basic_monthly`, `pro_monthly`, `basic_yearly`), subscriptions (our id as
  theirs; 81906 when taken), trials in days, the first charge at creation (declined: no subscription), updates
  with `prorate_charges` (an upgrade charges the prorated difference, a downgrade leaves a credit balance),
  `number_of_billing_cycles` (Expired after the last), cancel, `retry_charge`; a test-only route bills the next
  cycle (`?decline=1`: the card declines from then on), Past Due on a failed charge.
Webhooks are not sent by the emulator: tests build them with the SDK's `webhook_testing.sample_notification` and
the emulator's keys (`sdk()`), and post them form-encoded, as Braintree does.

Does not reproduce: add-ons and discounts, billing day of month, plan management, partial settlements (child
transactions), authorization expiry, duplicate-transaction checking, the sandbox's amount-driven test outcomes,
GraphQL, and rate limits.
"""

from gateways.braintree.sdk import braintree  # noqa: F401 - first: the SDK warns when imported
from tests.braintree_emulator.app import BraintreeEmulator, Fault, running_emulator

__all__ = ["BraintreeEmulator", "Fault", "running_emulator"]
