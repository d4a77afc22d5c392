"""Square as a PayQL gateway: card payments taken with Web Payments SDK tokens through the official `squareup`
SDK (async client), refunds, disputes, subscriptions billed as invoices on a card on file, and signed event
notifications. See `adapter.py`."""
