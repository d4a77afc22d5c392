"""Schema extensions: refuse card numbers before any resolver runs, and decide which errors to mask.

The card check reads the raw document, the operation name and every variable value as the
operation starts, and a request that carries a card number is answered with the refusal alone:
its text is never parsed or coerced, so no parse or coercion error repeats the number (in the
response or the log). The parsed literals are read again at validation, where escapes
("\\u0034…") are decoded; that verdict is kept per parsed document, which the parser's cache
hands to every request of the same text. No error that leaves carries a card number: one whose
message still looks like one is masked.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import DocumentNode, GraphQLError, IntValueNode, StringValueNode, visit
from graphql.language import Visitor
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from domain.card_numbers import contains_card_number, looks_like_card_number
from schema.document_verdicts import per_document

# As many documents as the parser's cache keeps (`schema.assembly`): a verdict outlives its document
# there no longer than the validation's does.
LITERAL_VERDICT_CACHE_SIZE = 1024
CARD_NUMBER_MESSAGE = "Card numbers are not accepted here. Use the payment form, which sends a token instead."


def card_number_refusal() -> GraphQLError:
    return GraphQLError(CARD_NUMBER_MESSAGE, extensions={"code": "INVALID_INPUT"})


class _LiteralScanner(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_string_value(self, node: StringValueNode, *_args: object) -> None:
        self.found = self.found or looks_like_card_number(node.value)

    def enter_int_value(self, node: IntValueNode, *_args: object) -> None:
        self.found = self.found or looks_like_card_number(node.value)


# What runs in place of a request that carries a card number, of a type its transport allows (a
# legacy websocket allows only subscriptions); it is never executed: the refusal replaces its
# validation errors.
_STAND_INS = {
    kind: f"{kind.value} CardNumberRefused {{ __typename }}"
    for kind in (OperationType.QUERY, OperationType.MUTATION, OperationType.SUBSCRIPTION)
}


@per_document(LITERAL_VERDICT_CACHE_SIZE)
def _has_card_number_literal(document: DocumentNode) -> bool:
    scanner = _LiteralScanner()
    visit(document, scanner)
    return scanner.found


class RefuseCardNumbers(SchemaExtension):
    def __init__(self) -> None:
        super().__init__()
        self._refused = False

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        sent = (context.query or "", context.operation_name or "", context.variables or {})
        if contains_card_number(sent):
            # Before any extension parses: the request's own text is never parsed, coerced or
            # cached, so no parse, coercion or unknown-operation error can repeat the number.
            self._refused = True
            kind = next((kind for kind in _STAND_INS if kind in context.allowed_operations), OperationType.QUERY)
            context.query, context.variables = _STAND_INS[kind], {}
            # Strawberry keeps the requested operation name only here (its property has no setter).
            context._provided_operation_name = None
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if not self._refused and context.graphql_document is not None:
            self._refused = _has_card_number_literal(context.graphql_document)
        if self._refused:
            # Replaces the validation errors: "Int cannot represent…" would repeat a literal.
            context.pre_execution_errors = [card_number_refusal()]
        yield


def should_mask_error(error: GraphQLError) -> bool:
    """Mask anything that came from an exception in our code, and anything that would repeat a card
    number; GraphQL's own errors are otherwise safe."""
    if looks_like_card_number(error.message):
        return True
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)
