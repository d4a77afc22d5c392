"""The use cases the GraphQL fields call: catalog, orders, checkout, payments, order status.

Resolvers call gateways only through `gateways.base.PaymentGateway` and change statuses only
through `db.transitions`. Expected failures are raised as `UseCaseError` with a stable code.
"""
