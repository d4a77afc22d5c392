"""A Strawberry extension opening one span per GraphQL execution, named by operation type and root
field (`graphql mutation checkout`); the gateway calls and database queries it makes are its
children. Never the document or the variables as attributes: they may carry personal data."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from payql.graphql_metrics import operation_labels
from payql.tracing import span


class GraphQLTracing(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        operation_type, field = operation_labels(self.execution_context)
        attributes = {"graphql.operation.type": operation_type, "graphql.field": field}
        with span(f"graphql {operation_type} {field}", attributes):
            yield
