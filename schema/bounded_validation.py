"""Validate a GraphQL document only once its cost is known: refuse first, then run the rules.

graphql-core runs every validation rule in one pass, so a refusal must come before that pass: a
rule of our own would run alongside the depth and alias rules, not ahead of them. Validation
results are cached per parsed document, with suggestions ("Did you mean …?") left out when asked,
and so is variable coercion at execution. Nothing here may run the rules on a refused document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, validate
from graphql.validation import ASTValidationRule
from graphql.validation.rules import overlapping_fields_can_be_merged
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from schema.document_verdicts import per_document
from schema.query_cost import QUERY_TOO_COMPLEX, QueryLimits, refusal

VALIDATION_CACHE_SIZE = 1024
# graphql-core's check that overlapping fields can merge compares same-named fields pairwise and
# stops at a budget of comparisons: 500,000 by default, seconds of work (490 copies of
# `products { id }` spend it all). Real documents spend under a hundred.
OVERLAP_COMPARISON_BUDGET = 10_000
TOO_MUCH_TO_VALIDATE = "Validation stopped: this query takes too much work to check. Send a smaller query."


@per_document(VALIDATION_CACHE_SIZE)
def _validate(
    document: DocumentNode,
    schema: GraphQLSchema,
    rules: tuple[type[ASTValidationRule], ...],
    hide_suggestions: bool,
) -> list[GraphQLError]:
    # Strawberry's own validate_document adds these two rules; it cannot hide suggestions.
    return validate(
        schema,
        document,
        (*rules, MaybeNullValidationRule, OneOfInputValidationRule),
        hide_suggestions=hide_suggestions,
    )


def limit_overlap_comparisons() -> None:
    """Lower graphql-core's comparison budget (a module setting it reads as each validation starts)."""
    overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = OVERLAP_COMPARISON_BUDGET


def _coded(errors: list[GraphQLError]) -> list[GraphQLError]:
    """An aborted validation (budget spent, or too many errors) says so with our code."""
    if not any(isinstance(error, ValidationAbortedError) for error in errors):
        return errors
    return [
        GraphQLError(TOO_MUCH_TO_VALIDATE, extensions={"code": QUERY_TOO_COMPLEX})
        if isinstance(error, ValidationAbortedError)
        else error
        for error in errors
    ]


class BoundedValidation(SchemaExtension):
    """Takes the place of strawberry's ValidationCache, which can neither refuse first nor hide suggestions."""

    def __init__(self, limits: QueryLimits, *, hide_suggestions: bool) -> None:
        super().__init__()
        self.limits = limits
        self.hide_suggestions = hide_suggestions

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        schema = context.schema._schema
        document = context.graphql_document
        assert document is not None  # strawberry parses before it validates
        error = refusal(schema, document, context.variables or {}, self.limits)
        if error is not None:
            context.pre_execution_errors = [error]
        else:
            context.pre_execution_errors = _coded(
                _validate(document, schema, context.validation_rules, self.hide_suggestions)
            )
        yield


class ExecutionWithoutSuggestions(StrawberryGraphQLCoreExecutionContext):
    """Coerces variables without "Did you mean …?" (an unknown enum value or input field)."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        return super().build(*args, **{**kwargs, "hide_suggestions": True})
