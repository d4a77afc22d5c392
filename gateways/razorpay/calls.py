"""`RazorpayCalls`: what every Razorpay verb shares — one SDK call off the event loop with its failures translated
into `gateways.errors`, answers checked to be JSON objects, and `mapped` for wire shapes we cannot read.

Never touches PayQL's database or settings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from gateways.errors import GatewayError, GatewayUnavailable
from gateways.razorpay.client import RazorpayClient
from gateways.razorpay.errors import translate

_T = TypeVar("_T")
# Razorpay's largest page (`count`), and how many pages a listing reads at most.
PAGE_SIZE = 100
MAX_PAGES = 50


class RazorpayCalls:
    _client: RazorpayClient

    async def _json(self, fn: Callable[[Any], Any], reference: str | None = None) -> dict[str, Any]:
        try:
            answer = await self._client.call(fn)
        except GatewayError:
            raise
        except Exception as exc:  # the SDK and requests raise many types; all are translated
            raise translate(exc, reference=reference) from exc
        if not isinstance(answer, dict):
            raise GatewayUnavailable(
                "The payment provider sent an unreadable answer.",
                detail="razorpay: not a JSON object; read it back",
                reference=reference,
            )
        return answer

    async def _items(self, fn: Callable[[Any, dict[str, Any]], Any], query: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every item of a collection, page by page (`skip`/`count`)."""
        items: list[dict[str, Any]] = []
        for number in range(MAX_PAGES):
            options = {**query, "count": PAGE_SIZE, "skip": number * PAGE_SIZE}
            collection = await self._json(functools.partial(_page, fn, options))
            page = mapped(_collection_items, collection, None)
            items.extend(page)
            if len(page) < PAGE_SIZE:
                break
        return items


def _page(fn: Callable[[Any, dict[str, Any]], Any], options: dict[str, Any], sdk: Any) -> Any:
    return fn(sdk, options)


def _collection_items(collection: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = collection["items"]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise TypeError("collection items are not objects")
    return items


def mapped(transform: Callable[[Any], _T], wire: Any, reference: str | None) -> _T:
    """Map a Razorpay object, turning a shape we cannot read into `GatewayUnavailable` (read it back later)."""
    try:
        return transform(wire)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise GatewayUnavailable(
            "The payment provider sent an unreadable answer.",
            detail=f"razorpay answer not understood: {exc!r}; read it back",
            reference=reference,
        ) from exc


def newest(items: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    return max(items, key=lambda item: int(item.get("created_at") or 0), default=None)
