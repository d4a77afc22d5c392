"""How much work a GraphQL document asks for, measured without expanding it, and the refusal.

One walk expands every fragment at most twice (memoized, so a fragment spread twice in each of
forty fragments costs forty steps, not 2**40) and refuses fragment cycles and runaway nesting. A
document is refused when, with its fragments expanded, it selects more fields than allowed (the
depth and alias rules walk that expansion, spread by spread) or costs more than allowed: every
field counts once per item of the lists above it, a list counting its first/last/limit argument
(the request's variable if it is one, else the schema's default) or, without one, the default
list size. Nothing here may expand a fragment per spread, recurse without a bound, or run a
resolver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLType,
    InlineFragmentNode,
    IntValueNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)

from schema.document_verdicts import per_document

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
# Arguments that say how many items a list field (or a connection's edges) returns.
SIZE_ARGUMENTS = ("first", "last", "limit")
# Selection sets and fragment spreads nested deeper than this are refused before the walk could
# exhaust Python's recursion limit; the depth rule allows far less for fields alone.
MAX_NESTING = 100
# One verdict per parsed document (the parser cache keeps documents by their text).
VERDICT_CACHE_SIZE = 1024


@dataclass(frozen=True)
class QueryLimits:
    max_fields: int
    max_cost: int
    default_list_size: int


@dataclass(frozen=True)
class Expansion:
    fields: int
    cost: int


@dataclass(frozen=True)
class Measurement:
    fields: int
    cost: int
    # Variables given as a list's size: only a request that supplies one of them changes the cost.
    sizing_variables: frozenset[str]


class QueryTooComplex(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Measure:
    """One walk over one document. Counts saturate just above the limits, so numbers stay small."""

    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any], limits: QueryLimits
    ):
        self.schema = schema
        self.limits = limits
        self.variables = variables
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.variable_defaults = _integer_variable_defaults(document)
        # Keyed by (fragment, directly inside a sized connection): the only context a fragment's
        # numbers depend on, so each fragment is walked at most twice.
        self.memo: dict[tuple[str, bool], Expansion] = {}
        self.in_progress: set[tuple[str, bool]] = set()
        self.sizing_variables: set[str] = set()

    def saturate(self, fields: int, cost: int) -> Expansion:
        return Expansion(min(fields, self.limits.max_fields + 1), min(cost, self.limits.max_cost + 1))

    def selection_set(
        self, node: SelectionSetNode, parent: GraphQLNamedType | None, sized: bool, nesting: int
    ) -> Expansion:
        if nesting > MAX_NESTING:
            raise QueryTooComplex(f"This query nests selections more than {MAX_NESTING} levels deep.")
        fields = cost = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                part = self.field(selection, parent, sized, nesting)
            elif isinstance(selection, InlineFragmentNode):
                condition = self.named_type(selection.type_condition) if selection.type_condition else parent
                part = self.selection_set(selection.selection_set, condition, sized, nesting + 1)
            elif isinstance(selection, FragmentSpreadNode):
                part = self.fragment(selection.name.value, sized, nesting + 1)
            else:  # pragma: no cover - graphql-core has no other selection kind
                continue
            fields, cost = fields + part.fields, cost + part.cost
        return self.saturate(fields, cost)

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, sized: bool, nesting: int) -> Expansion:
        if node.selection_set is None:
            return Expansion(1, 1)
        definition = _field_definition(parent, node.name.value)
        if definition is None or (parent is not None and parent.name.startswith("__")):
            # Unknown fields are left to validation; introspection is bounded by the schema itself.
            multiplier, child_sized = 1, False
            child_type = get_named_type(definition.type) if definition else None
        else:
            multiplier, child_sized = self.multiplier(node, definition, sized)
            child_type = get_named_type(definition.type)
        inner = self.selection_set(node.selection_set, child_type, child_sized, nesting + 1)
        return self.saturate(1 + inner.fields, 1 + multiplier * inner.cost)

    def fragment(self, name: str, sized: bool, nesting: int) -> Expansion:
        key = (name, sized)
        known = self.memo.get(key)
        if known is not None:
            return known
        definition = self.fragments.get(name)
        if definition is None:
            return Expansion(0, 0)  # validation reports the unknown fragment
        if key in self.in_progress:
            raise QueryTooComplex(f"Fragment '{name}' spreads itself, so it never ends.")
        self.in_progress.add(key)
        expansion = self.selection_set(
            definition.selection_set, self.named_type(definition.type_condition), sized, nesting
        )
        self.in_progress.discard(key)
        self.memo[key] = expansion
        return expansion

    def multiplier(self, node: FieldNode, definition: GraphQLField, sized: bool) -> tuple[int, bool]:
        """How many times the field's selections resolve, and whether they sit in a sized connection."""
        size = self.size_argument(node, definition)
        lists = _list_depth(definition.type)
        if lists == 0:
            # A connection (orders(first: 20) { edges … }): its size counts here, once, not again at edges.
            return (1, False) if size is None else (size, True)
        outer = size if size is not None else (1 if sized else self.limits.default_list_size)
        return outer * self.limits.default_list_size ** (lists - 1), False

    def size_argument(self, node: FieldNode, definition: GraphQLField) -> int | None:
        given = {argument.name.value: argument.value for argument in node.arguments or ()}
        for name in SIZE_ARGUMENTS:
            argument = definition.args.get(name)
            if argument is None:
                continue
            value = given.get(name)
            if isinstance(value, IntValueNode):
                return max(0, int(value.value))
            if isinstance(value, VariableNode):
                self.sizing_variables.add(value.name.value)
                supplied = self.variables.get(value.name.value, self.variable_defaults.get(value.name.value))
                if isinstance(supplied, int) and not isinstance(supplied, bool):
                    return max(0, supplied)
            if isinstance(argument.default_value, int):
                return max(0, argument.default_value)
            return None
        return None

    def named_type(self, node: NamedTypeNode) -> GraphQLNamedType | None:
        return self.schema.get_type(node.name.value)


def _field_definition(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        definition: GraphQLField | None = parent.fields.get(name)
        return definition
    return None


def _list_depth(type_: GraphQLType) -> int:
    depth = 0
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        depth += isinstance(type_, GraphQLList)
        type_ = type_.of_type
    return depth


def _integer_variable_defaults(document: DocumentNode) -> dict[str, int]:
    defaults: dict[str, int] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            for variable in definition.variable_definitions or ():
                if isinstance(variable.default_value, IntValueNode):
                    name = variable.variable.name.value
                    defaults[name] = max(defaults.get(name, 0), int(variable.default_value.value))
    return defaults


def measure(
    schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any], limits: QueryLimits
) -> Measurement:
    """The document's fields with fragments expanded (all operations together, or its largest
    fragment) and its costliest operation. Raises QueryTooComplex for cycles and runaway nesting."""
    walk = _Measure(schema, document, variables, limits)
    operation_fields = fragment_fields = cost = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            root = schema.get_root_type(definition.operation)
            expansion = walk.selection_set(definition.selection_set, root, False, 1)
            operation_fields += expansion.fields
            cost = max(cost, expansion.cost)
        elif isinstance(definition, FragmentDefinitionNode):
            fragment_fields = max(fragment_fields, walk.fragment(definition.name.value, False, 1).fields)
    total = walk.saturate(max(operation_fields, fragment_fields), cost)
    return Measurement(total.fields, total.cost, frozenset(walk.sizing_variables))


def refusal(
    schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any], limits: QueryLimits
) -> GraphQLError | None:
    """The error that refuses this document, or None when it is within the limits.

    The parser cache hands back the same document for the same text, so the verdict without
    variables is cached; it is measured again only when the request sizes a list with a variable.
    """
    error, sizing_variables = _judged_without_variables(document, schema, limits)
    if sizing_variables & variables.keys():
        error, _ = _judge(schema, document, variables, limits)
    return error


def _judge(
    schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any], limits: QueryLimits
) -> tuple[GraphQLError | None, frozenset[str]]:
    try:
        expansion = measure(schema, document, variables, limits)
    except QueryTooComplex as error:
        return GraphQLError(error.message, extensions={"code": QUERY_TOO_COMPLEX}), frozenset()
    if expansion.fields > limits.max_fields:
        message = (
            f"This query selects more than {limits.max_fields} fields once its fragments are expanded. "
            "Select fewer fields or send several smaller queries."
        )
    elif expansion.cost > limits.max_cost:
        message = (
            f"This query costs more than {limits.max_cost} (each field once per item of the lists above it; "
            f"a list counts its first/last/limit, or {limits.default_list_size}). "
            "Ask for smaller pages or fewer nested lists."
        )
    else:
        return None, expansion.sizing_variables
    return GraphQLError(message, extensions={"code": QUERY_TOO_COMPLEX}), expansion.sizing_variables


@per_document(VERDICT_CACHE_SIZE)
def _judged_without_variables(
    document: DocumentNode, schema: GraphQLSchema, limits: QueryLimits
) -> tuple[GraphQLError | None, frozenset[str]]:
    return _judge(schema, document, {}, limits)
