"""Square SDK answers as wire JSON, and the guard that turns a shape we cannot read into `GatewayUnavailable`.
Shared by the payment and billing verbs; never calls Square."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from gateways.errors import GatewayUnavailable

_T = TypeVar("_T")


class Wire(Protocol):
    def json(self, **kwargs: Any) -> str: ...


def wire(model: Wire) -> dict[str, Any]:
    """An SDK model as Square's wire JSON (field names as sent, unset fields left out)."""
    value = json.loads(model.json())
    if not isinstance(value, dict):
        raise GatewayUnavailable("The payment provider sent an unreadable answer.", detail="square: not an object")
    return value


def part(model: Wire, key: str, reference: str | None) -> dict[str, Any]:
    """The object under `key` of an SDK answer (`payment`, `refund`, `dispute`)."""
    found = wire(model).get(key)
    if not isinstance(found, dict):
        raise GatewayUnavailable(
            "The payment provider sent an unreadable answer.",
            detail=f"square answer has no {key}; read it back",
            reference=reference,
        )
    return found


def mapped(transform: Callable[[Mapping[str, Any]], _T], wire: object, reference: str | None) -> _T:
    """Map a Square object, turning a shape we cannot read into `GatewayUnavailable` (read it back later)."""
    try:
        if not isinstance(wire, Mapping):
            raise TypeError("not an object")
        return transform(wire)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise GatewayUnavailable(
            "The payment provider sent an unreadable answer.",
            detail=f"square answer not understood: {exc!r}; read it back",
            reference=reference,
        ) from exc
