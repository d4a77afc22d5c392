"""A serving process's collector: start-up frozen out of collections, young collections less often."""

from __future__ import annotations

import gc

from payql.collector import YOUNG_GENERATION_THRESHOLD


async def test_a_started_server_has_frozen_its_start_up_and_raised_the_young_threshold(server: str) -> None:
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD
    assert gc.isenabled()
