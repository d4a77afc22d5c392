"""Persistence: Tortoise models, migrations, the status writers and the idempotency store.

Each entity's statuses have exactly one writer module, with its transition table: orders and payments
in `transitions.py`, refunds in `refunds.py`, disputes in `disputes.py`, subscriptions and invoices in
`subscriptions.py`. Nothing here calls a gateway or knows about GraphQL.
"""
