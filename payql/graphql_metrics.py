"""A Strawberry extension counting and timing GraphQL operations by type and root field.

The label is the operation's first root field (`checkout`, `refundPayment`) when the schema has
it, never the client-chosen operation name, so clients cannot create series; anything else is
`unknown`. It runs first, so it sees the final answer (after masking).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from graphql import FieldNode, GraphQLSchema, OperationDefinitionNode, OperationType
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from payql.metrics import GRAPHQL_DURATION, GRAPHQL_OPERATIONS, labelled


class GraphQLMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        operation_type, field = operation_labels(context)
        if context.pre_execution_errors:
            outcome = "invalid"
        elif context.result is not None and context.result.errors:
            outcome = "error"
        else:
            outcome = "ok"
        labelled(GRAPHQL_OPERATIONS, operation_type, field, outcome).inc()
        labelled(GRAPHQL_DURATION, operation_type, field).observe(time.perf_counter() - started)


_TYPE_NAMES = {
    OperationType.QUERY: "query",
    OperationType.MUTATION: "mutation",
    OperationType.SUBSCRIPTION: "subscription",
}


def operation_labels(context: ExecutionContext) -> tuple[str, str]:
    """(operation type, root field) of a parsed operation; `unknown` for what the schema lacks."""
    document = context.graphql_document
    if document is None:
        return "unknown", "unknown"
    operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    chosen = [node for node in operations if node.name and node.name.value == context.operation_name]
    if not (chosen or operations):
        return "unknown", "unknown"
    operation = (chosen or operations)[0]
    first = next((node for node in operation.selection_set.selections if isinstance(node, FieldNode)), None)
    schema: GraphQLSchema = context.schema._schema
    root = schema.get_root_type(operation.operation)
    known = first is not None and root is not None and first.name.value in root.fields
    return _TYPE_NAMES[operation.operation], first.name.value if known and first else "unknown"
