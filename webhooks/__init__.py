"""The REST side-endpoint for gateway webhooks and the store → verify → process pipeline.

A delivery is verified by its gateway's adapter, stored once by (gateway, event id) and answered
2xx before any processing; processing happens in a job and goes through `db.transitions`, the
same module the GraphQL resolvers use. Nothing here trusts an unverified byte.
"""
