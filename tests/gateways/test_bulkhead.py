"""The bulkhead's count: a slot per call in flight, per gateway, given back however the call ends."""

from __future__ import annotations

import pytest

from gateways.bulkhead import Bulkhead
from gateways.errors import GatewayBusy, GatewayNotAttempted


def test_a_call_past_the_bound_is_refused_and_other_gateways_are_not_affected() -> None:
    bulkhead = Bulkhead()
    with bulkhead.slot("slow", 2), bulkhead.slot("slow", 2):
        with pytest.raises(GatewayBusy) as refused, bulkhead.slot("slow", 2):
            pass
        assert isinstance(refused.value, GatewayNotAttempted)
        with bulkhead.slot("other", 2):
            assert bulkhead.in_flight("other") == 1
        assert bulkhead.in_flight("slow") == 2
    assert bulkhead.in_flight("slow") == 0


def test_a_slot_is_given_back_when_the_call_raises() -> None:
    bulkhead = Bulkhead()
    with pytest.raises(RuntimeError), bulkhead.slot("g", 1):
        raise RuntimeError("the call failed")
    with bulkhead.slot("g", 1):
        assert bulkhead.in_flight("g") == 1


def test_no_bound_at_zero() -> None:
    bulkhead = Bulkhead()
    with bulkhead.slot("g", 0), bulkhead.slot("g", 0), bulkhead.slot("g", 0):
        assert bulkhead.in_flight("g") == 3
