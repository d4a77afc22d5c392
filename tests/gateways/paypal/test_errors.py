"""Which PayPal transport failures mean "never sent" (safe to fail over) and which an unknown outcome."""

from __future__ import annotations

import pytest
import requests
import urllib3

from gateways.errors import GatewayNotAttempted, GatewayUnavailable
from gateways.paypal.errors import translate

_URL = "https://api-m.example/v2/checkout/orders"


def _refused() -> requests.exceptions.ConnectionError:
    pool = urllib3.HTTPSConnectionPool("api-m.example")
    reason = urllib3.exceptions.NewConnectionError(urllib3.connection.HTTPSConnection("api-m.example"), "refused")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(pool, _URL, reason))


def _dropped() -> requests.exceptions.ConnectionError:
    reason = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
    return requests.exceptions.ConnectionError(reason)


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (_refused(), GatewayNotAttempted),
        (requests.exceptions.ConnectTimeout("connect timed out"), GatewayNotAttempted),
        (requests.exceptions.ReadTimeout("read timed out"), GatewayUnavailable),
        (_dropped(), GatewayUnavailable),
    ],
    ids=["refused", "connect timeout", "read timeout", "dropped after sending"],
)
def test_transport_failures(failure: BaseException, expected: type[GatewayUnavailable]) -> None:
    assert type(translate(failure, reference=None, request_id="payql-1")) is expected
