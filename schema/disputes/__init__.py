"""Dispute fields for merchant staff, laid out like payments: `types`, `inputs`, `queries`, `mutations`.

Thin adapters over `resolvers.disputes`; the gathered evidence is exposed as JSON, as it was stored.
"""
