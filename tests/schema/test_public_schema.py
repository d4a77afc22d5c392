"""The public GraphQL schema is what clients program against: it changes only on purpose.

A change to `schema/` that renames, moves or drops a type, field, argument or description shows
up here as a diff against the committed SDL. Regenerate the snapshot only for an intended change:
`python -m tests.schema.test_public_schema > tests/fixtures/schema/public.graphql`.
"""

from __future__ import annotations

from pathlib import Path

from schema.assembly import build_schema
from schema.query_cost import QueryLimits

SNAPSHOT = Path(__file__).parent.parent / "fixtures" / "schema" / "public.graphql"


def printed_schema() -> str:
    schema = build_schema(
        max_depth=12,
        max_aliases=15,
        max_tokens=2000,
        query_limits=QueryLimits(max_fields=1000, max_cost=50_000, default_list_size=10),
        introspection=True,
        suggestions=True,
    )
    return schema.as_str() + "\n"


def test_the_public_schema_matches_the_committed_snapshot() -> None:
    assert printed_schema() == SNAPSHOT.read_text(encoding="utf-8")


if __name__ == "__main__":
    print(printed_schema(), end="")
