"""Outgoing webhook fields for merchant staff, laid out like payments: `types`, `inputs`, `queries`,
`mutations`.

Thin adapters over `resolvers.merchant_webhooks`. A signing secret appears in exactly two answers,
`createMerchantEndpoint` and `rollMerchantEndpointSecret`, and never on the endpoint type itself.
"""
