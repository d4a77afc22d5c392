"""How GraphQL errors are logged: an expected client error in one INFO line, a "busy, retry shortly" in
one WARNING line, an unexpected one with its traceback at ERROR.

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
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

from schema.extensions import should_mask_error
from schema.stream_results import HookedOnlyRunner

logger = logging.getLogger("payql.graphql")


def never_busy(_error: BaseException) -> str | None:
    return None


class PayQLSchema(strawberry.Schema):
    """`busy`: the code an extension answers a failure with when it means "retry shortly" (an exhausted
    pool, a database connection ended under the request, an unreachable Redis), else None: such a failure
    is logged as a WARNING line, without a traceback, since it is an operator's capacity or failover
    event, not a defect."""

    def __init__(self, *args: Any, busy: Callable[[BaseException], str | None] = never_busy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.busy = busy

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return HookedOnlyRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        operation = execution_context.operation_name if execution_context is not None else None
        for error in errors:
            path = ".".join(str(part) for part in error.path or ()) or "-"
            answered = self.busy(error.original_error) if error.original_error is not None else None
            if answered is not None:
                logger.warning(
                    "busy in operation %s at %s, answered %s: %s",
                    operation or "-",
                    path,
                    answered,
                    type(error.original_error).__name__,
                )
            elif should_mask_error(error):
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
