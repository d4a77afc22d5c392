"""How GraphQL errors are logged: an expected client error in one INFO line, an unexpected one with
its traceback at ERROR.

Strawberry logs every error at ERROR with the traceback of whatever raised it, so each anonymous
bad request wrote a kilobyte of stack. Expected errors are GraphQL's own (syntax, validation, limits)
and our coded ones (`public_error`); the one test for "unexpected" is `should_mask_error`, the same
test that decides what the client sees. Never log variables or the document here: they can hold
card numbers or personal data.

The schema class lives here, so it also hands every operation the extension runner of
`schema.stream_results` (the per-result hooks asked of only the extensions that have them).
"""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

from schema.extensions import should_mask_error
from schema.stream_results import HookedOnlyRunner

logger = logging.getLogger("payql.graphql")


class PayQLSchema(strawberry.Schema):
    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return HookedOnlyRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        operation = execution_context.operation_name if execution_context is not None else None
        for error in errors:
            path = ".".join(str(part) for part in error.path or ()) or "-"
            if should_mask_error(error):
                logger.error(
                    "unexpected error in operation %s at %s: %s",
                    operation or "-",
                    path,
                    error.message,
                    exc_info=error.original_error,
                )
            else:
                code = (error.extensions or {}).get("code", "GRAPHQL")
                logger.info("client error %s in operation %s at %s: %s", code, operation or "-", path, error.message)
