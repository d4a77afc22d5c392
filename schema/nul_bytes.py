"""Schema extension: refuse a NUL character in any text input, before any resolver runs.

PostgreSQL cannot store U+0000 in text and SQLite silently can, so the same request would fail on
one backend and pass on the other. Refusing it at the edge (every variable, key or value, and every
string literal in the document) makes both answer INVALID_INPUT and change nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import DocumentNode, GraphQLError, StringValueNode, visit
from graphql.language import Visitor
from strawberry.extensions import SchemaExtension

from schema.document_verdicts import per_document
from schema.extensions import LITERAL_VERDICT_CACHE_SIZE

NUL = "\x00"
NUL_MESSAGE = "Text inputs must not contain NUL characters (U+0000)."


def contains_nul(value: object) -> bool:
    """Whether any string in a JSON-like value (dict keys included) holds a NUL; walks without recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


class _NulLiteralScanner(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_string_value(self, node: StringValueNode, *_args: object) -> None:
        self.found = self.found or NUL in node.value


@per_document(LITERAL_VERDICT_CACHE_SIZE)
def _has_nul_literal(document: DocumentNode) -> bool:
    """Kept per parsed document: the parser's cache hands the same one to every request of a text."""
    scanner = _NulLiteralScanner()
    visit(document, scanner)
    return scanner.found


class RefuseNulBytes(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        found = contains_nul(context.variables or {}) or contains_nul(context.operation_name)
        if not found and context.graphql_document is not None:
            found = _has_nul_literal(context.graphql_document)
        if found:
            error = GraphQLError(NUL_MESSAGE, extensions={"code": "INVALID_INPUT"})
            context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield
