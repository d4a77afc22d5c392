"""Verdicts about a parsed GraphQL document, kept per document and found by its identity.

Strawberry's parser cache hands the same `DocumentNode` to every request of one text, so what is
decided about a document alone (its cost, its validation errors, whether a literal holds a card
number or a NUL) is decided once. `functools.lru_cache` would find the verdict by the document's
hash, which graphql-core computes afresh over the whole tree on every call (its nodes are frozen
dataclasses): four such lookups cost every request a walk of its document each. Here the verdict is
found by `id(document)`, and the entry holds the document itself, so no other document can take
that id while the verdict is kept. Nothing here may hash a document or compare two by value: an
equal text parsed twice is two documents, which costs only a second verdict.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from functools import wraps
from typing import Concatenate, ParamSpec, TypeVar

from cachetools import LRUCache
from graphql import DocumentNode

P = ParamSpec("P")
R = TypeVar("R")


def per_document(
    maxsize: int,
) -> Callable[[Callable[Concatenate[DocumentNode, P], R]], Callable[Concatenate[DocumentNode, P], R]]:
    """Cache a function of (document, *hashable arguments) by the document's identity, `maxsize` entries."""

    def decorate(verdict: Callable[Concatenate[DocumentNode, P], R]) -> Callable[Concatenate[DocumentNode, P], R]:
        kept: LRUCache[Hashable, tuple[DocumentNode, R]] = LRUCache(maxsize)
        # A schema may also be executed from a thread (`execute_sync`); the cache's order is not thread-safe.
        lock = threading.Lock()

        @wraps(verdict)
        def cached(document: DocumentNode, /, *args: P.args, **kwargs: P.kwargs) -> R:
            key = (id(document), args, tuple(sorted(kwargs.items())))
            with lock:
                entry = kept.get(key)
            if entry is not None:
                return entry[1]
            result = verdict(document, *args, **kwargs)
            with lock:
                kept[key] = (document, result)
            return result

        return cached

    return decorate
