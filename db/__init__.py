"""Persistence: Tortoise models, migrations, the transition module (the only writer of statuses)
and the idempotency store. Nothing here calls a gateway or knows about GraphQL.
"""
