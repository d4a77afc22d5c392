"""Dispute query fields: staff only, through `resolvers.disputes`."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.statuses import DisputeStatus
from resolvers import disputes
from schema.disputes.types import (
    DisputeStatusEnum,
    DisputeType,
)
from schema.errors import PublicErrors
from schema.types import GraphQLInfo


@strawberry.type
class DisputeQuery:
    @strawberry.field(
        description="Staff only: disputes, the soonest evidence due date first.", extensions=[PublicErrors()]
    )
    async def disputes(
        self,
        info: GraphQLInfo,
        status: DisputeStatusEnum | None = None,  # type: ignore[valid-type]
        due_before: datetime | None = None,
        first: int = 50,
    ) -> list[DisputeType]:
        rows = await disputes.list_disputes(
            info.context.caller, DisputeStatus(status) if status else None, due_before, first
        )
        return [DisputeType.from_model(d) for d in rows]

    @strawberry.field(
        description="Staff only: one dispute with its evidence, notes, order and payment.", extensions=[PublicErrors()]
    )
    async def dispute(self, info: GraphQLInfo, id: strawberry.ID) -> DisputeType:
        return DisputeType.from_model(await disputes.get_dispute(info.context.caller, str(id)))
