"""Build the one Strawberry schema, with the caches and limits on, once at start-up."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from graphql.validation import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
)
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.analytics import AnalyticsQuery
from schema.billing.mutations import BillingMutation
from schema.billing.queries import BillingQuery
from schema.bounded_validation import BoundedValidation, ExecutionWithoutSuggestions, limit_overlap_comparisons
from schema.disputes.mutations import DisputeMutation
from schema.disputes.queries import DisputeQuery
from schema.error_logging import PayQLSchema, never_busy
from schema.extensions import RefuseCardNumbers, should_mask_error
from schema.live_updates import Subscription
from schema.merchant_webhooks.mutations import MerchantWebhookMutation
from schema.merchant_webhooks.queries import MerchantWebhookQuery
from schema.mutations import Mutation
from schema.nul_bytes import RefuseNulBytes
from schema.queries import Query
from schema.query_cost import QueryLimits
from schema.run_to_completion import RunToCompletion
from schema.scalars import SCALAR_MAP
from schema.shared_frames import SharedLiveExecution
from schema.stream_results import MaskErrorsWhenAny


def build_schema(
    *,
    max_depth: int,
    max_aliases: int,
    max_tokens: int,
    query_limits: QueryLimits,
    introspection: bool,
    suggestions: bool,
    observers: Sequence[type[SchemaExtension]] = (),
    unmasked: Sequence[type[SchemaExtension]] = (),
    busy: Callable[[BaseException], str | None] = never_busy,
) -> strawberry.Schema:
    """The schema with its limits. `observers` (metrics, tracing) run first, so they see every
    refusal and the final, masked answer. `unmasked`: extensions that may turn an error MaskErrors
    would hide into a coded one (the app passes the one that answers an exhausted pool
    RATE_LIMITED); they see the errors first. `busy`: the code that one answers a failure with (None for
    any other), logged as a warning rather than as an unexpected error."""
    # The depth and alias rules are built once: QueryDepthLimiter and MaxAliasesLimiter would make
    # a new rule class per request, and the validation cache (keyed by the rule classes) would
    # then never hit. bench/graphql_caches.py measures the difference.
    limits: list[type[ASTValidationRule]] = [depth_rule(max_depth, None, None), alias_rule(max_aliases)]
    limit_overlap_comparisons()
    # Factories, not instances: a fresh extension per request. The parser and validation caches
    # live at module level, so every request shares them.
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        *observers,
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: AddValidationRules(limits),
        lambda: ParserCache(maxsize=1024),
        # Refuses a document whose fragments expand too far, or that costs too much, before the
        # rules above walk it; then validates through its cache (strawberry's ValidationCache
        # cannot do the first step, nor hide suggestions).
        lambda: BoundedValidation(query_limits, hide_suggestions=not suggestions),
        # After BoundedValidation: a card number found once the document is parsed replaces every
        # validation error with the one refusal, so no error message can repeat the number.
        RefuseCardNumbers,
        RefuseNulBytes,
        lambda: MaskErrorsWhenAny(should_mask_error=should_mask_error, error_message="Unexpected error."),
        # After MaskErrors, so they leave the operation first and see the errors before it does.
        *unmasked,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return PayQLSchema(
        query=merge_types("Query", (Query, AnalyticsQuery, BillingQuery, DisputeQuery, MerchantWebhookQuery)),
        mutation=run_to_completion(
            merge_types("Mutation", (Mutation, BillingMutation, DisputeMutation, MerchantWebhookMutation))
        ),
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=extensions,
        execution_context_class=SharedLiveExecution if suggestions else SharedLiveExecutionWithoutSuggestions,
        busy=busy,
    )


class SharedLiveExecutionWithoutSuggestions(SharedLiveExecution, ExecutionWithoutSuggestions):
    """Live events executed once per document and caller (`schema.shared_frames`), variables
    coerced without suggestions."""


def run_to_completion(mutation: Any) -> Any:
    """Every mutation field runs to its end once started, whatever happens to its caller (see
    schema/run_to_completion.py). Applied once per field: the merged type shares its fields with
    the domain types, and a schema may be built more than once."""
    for field in mutation.__strawberry_definition__.fields:
        if not any(isinstance(extension, RunToCompletion) for extension in field.extensions):
            field.extensions.append(RunToCompletion())
    return mutation
