"""PayQL with its checkout's work taken out: what serving a checkout costs before any of the work.

`ceiling_app` is PayQL's own app, built from the environment as `payql serve --workers N` builds
each process's (every middleware, authentication, Strawberry with its extensions, the mutation's
own task, the payload), with one change: the checkout use case runs once, for real, and every later
checkout is answered with that first outcome's order and payment as they were committed. No
idempotency claim, rate limit, statement, gateway call, publish or receipt. Its CPU per request is
the least a PayQL checkout can cost while it is served this way: `bench.checkout --ceiling` runs it
beside PayQL and the floor. Nothing outside `bench/` may import this: it answers every checkout
with one order.
"""

from __future__ import annotations

from starlette.applications import Starlette

import schema.mutations
from payql.app import app_from_environment
from resolvers.checkout import CheckoutRequest, checkout
from resolvers.context import Caller, Deps
from resolvers.outcome import Outcome


def ceiling_app() -> Starlette:
    first: list[Outcome] = []

    async def first_outcome_again(deps: Deps, caller: Caller, request: CheckoutRequest) -> Outcome:
        if not first:
            first.append(await checkout(deps, caller, request))
        kept = first[0]
        return Outcome(
            order_id=kept.order_id,
            payment_id=kept.payment_id,
            committed_order=kept.committed_order,
            committed_payment=kept.committed_payment,
        )

    # The resolver looks the use case up in its module at each call.
    setattr(schema.mutations, "checkout", first_outcome_again)  # noqa: B010 - mypy: not an exported name
    return app_from_environment()
