"""Schema extensions: refuse card numbers before any resolver runs, and decide which errors to mask.

The card check looks at every variable value and every literal in the document. It runs in the
validation phase, so a request carrying a card number never reaches execution; its error message
never repeats the value.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError, IntValueNode, StringValueNode, visit
from graphql.language import Visitor
from strawberry.extensions import SchemaExtension

from domain.card_numbers import contains_card_number, looks_like_card_number

CARD_NUMBER_MESSAGE = "Card numbers are not accepted here. Use the payment form, which sends a token instead."


class _LiteralScanner(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_string_value(self, node: StringValueNode, *_args: object) -> None:
        self.found = self.found or looks_like_card_number(node.value)

    def enter_int_value(self, node: IntValueNode, *_args: object) -> None:
        self.found = self.found or looks_like_card_number(node.value)


class RefuseCardNumbers(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        found = contains_card_number(context.variables or {})
        if not found and context.graphql_document is not None:
            scanner = _LiteralScanner()
            visit(context.graphql_document, scanner)
            found = scanner.found
        if found:
            error = GraphQLError(CARD_NUMBER_MESSAGE, extensions={"code": "INVALID_INPUT"})
            context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield


def should_mask_error(error: GraphQLError) -> bool:
    """Mask anything that came from an exception in our code; GraphQL's own errors are safe."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)
