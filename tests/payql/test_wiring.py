"""Wiring the gateways: the call limits from settings guard every adapter the registry hands out."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateways.call_guard import CallLimits
from gateways.errors import GatewayTimeout
from gateways.sandbox.package import PreparedSandbox
from payql.settings import Settings
from payql.wiring import build_gateways, prepare_gateways
from tests.testkit import TEST_WEBHOOK_SECRET


async def test_the_call_limits_from_settings_guard_every_adapter(tmp_path: Path) -> None:
    settings = Settings(
        gateways=["sandbox"],
        gateway_settings={
            "sandbox": {"webhook_secrets": [TEST_WEBHOOK_SECRET], "state_path": tmp_path / "sandbox.sqlite3"}
        },
        gateway_call_timeout_seconds=0.05,
        gateway_max_concurrent_calls=3,
        gateway_request_deadline_seconds=7,
    )
    prepared = prepare_gateways(settings, background=False)
    registry = await build_gateways(settings, prepared)
    sandbox = prepared["sandbox"]
    assert isinstance(sandbox, PreparedSandbox)
    try:
        assert registry.guard.limits == CallLimits(
            call_timeout_seconds=0.05, max_concurrent_calls=3, request_deadline_seconds=7
        )
        # A held answer is cut by the timeout from settings.
        sandbox.processor.arm_fault("hold", 1)
        with pytest.raises(GatewayTimeout):
            await registry.get("sandbox").retrieve("pi_sbx_unknown")
    finally:
        sandbox.processor.clear_faults()
        await registry.aclose()
