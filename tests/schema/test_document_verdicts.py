"""A verdict about a document is kept per document, found by identity, never by hashing the tree."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable

from graphql import DocumentNode, parse

from schema.document_verdicts import per_document


class UnhashableDocument(DocumentNode):
    """A document whose hash fails: graphql-core's walks the whole tree, which the cache must not pay."""

    def __hash__(self) -> int:
        raise AssertionError("the document was hashed")


def unhashable(text: str) -> DocumentNode:
    parsed = parse(text)
    return UnhashableDocument(definitions=parsed.definitions, loc=parsed.loc)


def counting() -> tuple[list[DocumentNode], Callable[[DocumentNode, int], int]]:
    seen: list[DocumentNode] = []

    @per_document(2)
    def field_count(document: DocumentNode, extra: int) -> int:
        seen.append(document)
        return len(document.definitions) + extra

    return seen, field_count


def test_a_verdict_is_computed_once_per_document_and_arguments_without_hashing_the_document() -> None:
    seen, field_count = counting()
    document = unhashable("{ a } { b }")

    assert field_count(document, 0) == 2
    assert field_count(document, 0) == 2
    assert field_count(document, 1) == 3

    assert seen == [document, document]


def test_an_equal_text_parsed_again_is_another_document_with_its_own_verdict() -> None:
    seen, field_count = counting()
    first, second = unhashable("{ a }"), unhashable("{ a }")

    field_count(first, 0)
    field_count(second, 0)

    assert [id(document) for document in seen] == [id(first), id(second)]


def test_the_least_recently_used_verdict_is_dropped_past_the_size() -> None:
    seen, field_count = counting()
    first, second, third = unhashable("{ a }"), unhashable("{ b }"), unhashable("{ c }")

    for document in (first, second, first, third, first, second):
        field_count(document, 0)

    # `second` was the least recent when `third` came, so it was computed again; `first` was kept.
    assert [id(document) for document in seen] == [id(first), id(second), id(third), id(second)]


def test_a_kept_verdict_keeps_its_document_so_no_other_document_can_take_its_id() -> None:
    @per_document(2)
    def definitions(document: DocumentNode) -> int:
        return len(document.definitions)

    document = unhashable("{ a }")
    definitions(document)
    alive = weakref.ref(document)

    del document
    gc.collect()

    assert alive() is not None
