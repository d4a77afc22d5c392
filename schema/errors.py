"""How a use case's expected failure reaches the client: the one mapping from `UseCaseError`.

A field that returns data (a query, a staff action without a payload) lets `UseCaseError` leave as a
coded GraphQL error through `PublicErrors`; a mutation whose payload has `userErrors` turns it into
those through `UserErrorsPayload`. Fields never catch `UseCaseError` themselves. Nothing here may
let an unexpected exception through as a coded error: those stay masked (`schema.extensions`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.extensions.field_extension import AsyncExtensionResolver
from strawberry.types import Info

from resolvers.errors import UseCaseError
from resolvers.outcome import UserErrorData

if TYPE_CHECKING:
    from schema.types import UserError


def public_error(error: UseCaseError) -> GraphQLError:
    """Fields without a payload to carry user errors raise a coded GraphQL error instead."""
    return GraphQLError(error.message, extensions={"code": str(error.code), "field": error.field})


def user_errors(errors: Sequence[UseCaseError | UserErrorData]) -> list[UserError]:
    # Imported here: schema.types imports PublicErrors for its staff-only fields.
    from schema.types import UserError

    return [UserError(code=error.code, message=error.message, field=error.field) for error in errors]


class PublicErrors(FieldExtension):
    """The field's `UseCaseError` leaves as a coded GraphQL error (`public_error`)."""

    async def resolve_async(self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any) -> Any:
        try:
            return await next_(source, info, **kwargs)
        except UseCaseError as error:
            raise public_error(error) from None


class UserErrorsPayload(FieldExtension):
    """The field's `UseCaseError` is answered with `refused(userErrors)`: a payload naming nothing else."""

    def __init__(self, refused: Callable[[list[UserError]], object]) -> None:
        super().__init__()
        self._refused = refused

    async def resolve_async(self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any) -> Any:
        try:
            return await next_(source, info, **kwargs)
        except UseCaseError as error:
            return self._refused(user_errors([error]))
