"""The routing policy, table-driven: an explicit choice is honoured, otherwise the table's order for the
currency, skipping what is not usable; bad tables are refused with the variable named."""

from __future__ import annotations

import pytest

from gateways.routing import RoutingConfigurationError, RoutingTable, route

ENABLED = ("alpha", "beta", "gamma")
TABLE = "USD:alpha,beta;eur:beta,alpha;*:gamma"


@pytest.mark.parametrize(
    ("text", "currency", "chosen", "unusable", "expected"),
    [
        (TABLE, "USD", None, set(), ("alpha", "beta")),
        (TABLE, "usd", None, set(), ("alpha", "beta")),
        (TABLE, "EUR", None, set(), ("beta", "alpha")),
        (TABLE, "JPY", None, set(), ("gamma",)),
        (TABLE, "USD", None, {"alpha"}, ("beta",)),
        (TABLE, "USD", None, {"alpha", "beta"}, ()),
        (TABLE, "USD", "gamma", set(), ("gamma",)),
        (TABLE, "USD", "alpha", {"alpha"}, ("alpha",)),
        ("", "USD", None, set(), ENABLED),
        ("", "USD", None, {"beta"}, ("alpha", "gamma")),
        ("USD:beta", "EUR", None, set(), ENABLED),
    ],
    ids=[
        "currency order",
        "lower-case currency",
        "other currency order",
        "wildcard",
        "unusable skipped",
        "nothing usable",
        "choice honoured",
        "choice never re-routed",
        "default: enabled order",
        "default skips unusable",
        "no wildcard: enabled order",
    ],
)
def test_route(text: str, currency: str, chosen: str | None, unusable: set[str], expected: tuple[str, ...]) -> None:
    table = RoutingTable.parse(text, ENABLED)
    assert route(table, currency, chosen=chosen, usable=lambda name: name not in unusable) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("USD alpha", "is not 'CURRENCY:gateway,gateway'"),
        ("USD:", "is not 'CURRENCY:gateway,gateway'"),
        ("DOLLARS:alpha", "is not 'CURRENCY:gateway,gateway'"),
        ("USD:alpha;USD:beta", "USD is routed twice"),
        ("USD:alpha,delta", "delta not enabled"),
        ("USD:alpha,alpha", "names a gateway twice"),
    ],
)
def test_bad_tables_are_refused(text: str, complaint: str) -> None:
    with pytest.raises(RoutingConfigurationError, match="PAYQL_ROUTING") as refused:
        RoutingTable.parse(text, ENABLED)
    assert complaint in str(refused.value)
