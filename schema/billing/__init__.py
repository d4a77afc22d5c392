"""GraphQL for subscriptions, laid out like payments: `types`, `inputs`, `queries`, `mutations`.

The live `subscriptionStatus` stream lives with the other websocket fields in `schema.live_updates`.
"""
