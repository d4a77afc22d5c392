"""`PayPalCalls`: what every PayPal verb shares — one SDK call off the event loop with its failures translated
into `gateways.errors`, answers read as JSON objects, and `mapped` for wire shapes we cannot read.

Never touches PayQL's database or settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from paypalserversdk.exceptions.api_exception import ApiException

from gateways.errors import GatewayError, GatewayUnavailable
from gateways.paypal.client import PayPalClient
from gateways.paypal.errors import translate
from gateways.paypal.rest import rest_calls

_T = TypeVar("_T")


class PayPalCalls:
    _client: PayPalClient

    async def _call(self, fn: Callable[[Any], _T], reference: str | None = None, request_id: str | None = None) -> _T:
        try:
            return await self._client.call(fn)
        except GatewayError:
            raise
        except Exception as exc:  # the SDK and requests raise many types; all are translated
            raise translate(exc, reference=reference, request_id=request_id) from exc

    async def _json(
        self, fn: Callable[[Any], Any], reference: str | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        return _object(await self._call(fn, reference, request_id), reference)

    async def _rest(
        self,
        method: str,
        path: str,
        *,
        reference: str | None = None,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        request_id: str | None = None,
        multipart_json: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An endpoint without an SDK controller (see `rest.py`); an empty answer (204) reads as `{}`."""

        def send(sdk: Any) -> Any:
            return rest_calls(sdk).send(
                method, path, body=body, query=query, request_id=request_id, multipart_json=multipart_json
            )

        response = await self._call(send, reference, request_id)
        if not (response.text or "").strip():
            return {}
        return _object(response, reference)

    async def _rest_or_none(self, method: str, path: str, *, reference: str | None = None) -> dict[str, Any] | None:
        """`_rest` answering None where PayPal answers 404 (find-or-create)."""

        def send(sdk: Any) -> Any:
            try:
                return rest_calls(sdk).send(method, path)
            except ApiException as exc:
                if _missing(exc):
                    return None
                raise

        response = await self._call(send, reference)
        return None if response is None else _object(response, reference)


def _missing(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and int(exc.response_code) == 404


def _object(response: Any, reference: str | None) -> dict[str, Any]:
    try:
        value = json.loads(response.text)
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raise GatewayUnavailable(
            "The payment provider sent an unreadable answer.",
            detail=f"paypal {response.status_code}: not a JSON object; read it back",
            reference=reference,
        )
    return value


def mapped(transform: Callable[[dict[str, Any]], _T], wire: dict[str, Any], reference: str | None) -> _T:
    """Map a PayPal object, turning a shape we cannot read into `GatewayUnavailable` (read it back later)."""
    try:
        return transform(wire)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise GatewayUnavailable(
            "The payment provider sent an unreadable answer.",
            detail=f"paypal answer not understood: {exc!r}; read it back",
            reference=reference,
        ) from exc
