"""`payql worker` runs the periodic jobs on the schedule the interval settings give, like the
in-process timers: never less often than configured, and not at all at 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateways.registry import GatewayRegistry
from jobs.in_process import InProcessQueue
from jobs.saq_queue import SaqJobQueue
from jobs.schedule import cron_entries, cron_for_interval, interval_of
from payql.settings import Settings
from payql.wiring import build_job_context, build_job_queue, periodic_intervals


@pytest.mark.parametrize(
    ("seconds", "expression"),
    [
        (0, None),
        (0.5, "* * * * * */1"),
        (30, "* * * * * */30"),
        (45, "* * * * * */30"),
        (60, "*/1 * * * *"),
        (300, "*/5 * * * *"),
        (420, "*/6 * * * *"),
        (3600, "0 */1 * * *"),
        (5 * 3600, "0 */4 * * *"),
        (7 * 24 * 3600, "0 0 * * *"),
    ],
)
def test_an_interval_becomes_the_nearest_cron_step_not_longer(seconds: float, expression: str | None) -> None:
    assert cron_for_interval(seconds) == expression
    if expression is not None:
        assert interval_of(expression) <= seconds or seconds < 1


def test_the_worker_schedule_comes_from_the_interval_settings() -> None:
    defaults = dict(cron_entries(periodic_intervals(Settings())))
    assert defaults == {
        "sweep": "* * * * * */30",
        "reconcile": "*/5 * * * *",
        "dunning": "*/5 * * * *",
        "flag_disputes_due_soon": "0 */1 * * *",
    }
    tuned = Settings(
        sweep_interval_seconds=10,
        reconcile_interval_seconds=900,
        dunning_interval_seconds=0,
        dispute_check_interval_seconds=6 * 3600,
    )
    assert dict(cron_entries(periodic_intervals(tuned))) == {
        "sweep": "* * * * * */10",
        "reconcile": "*/15 * * * *",
        "flag_disputes_due_soon": "0 */6 * * *",
    }


def test_an_interval_cron_cannot_write_is_rounded_down_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert cron_entries({"sweep": 45}) == [("sweep", "* * * * * */30")]
    assert any("45" in record.getMessage() and "30" in record.getMessage() for record in caplog.records)


def test_an_email_send_times_out_inside_its_lease_and_the_lease_comes_from_settings(tmp_path: Path) -> None:
    """A crash mid-send leaves the email claimed for PAYQL_OUTBOX_LEASE_SECONDS; the send job must end (time
    out) well before then, so the process that takes the email over never sends it beside a live sender."""
    registry = GatewayRegistry([])
    for lease, timeout in ((300.0, 60.0), (10.0, 5.0)):
        settings = Settings(outbox_lease_seconds=lease, mailbox_path=tmp_path)
        context = build_job_context(settings, registry)
        assert context.schedule.outbox_lease_seconds == lease
        spec = next(spec for spec in context.specs() if spec.name == "dispatch_outbox_message")
        assert spec.timeout_seconds == timeout


def test_a_gateway_event_is_leased_for_the_configured_time_and_its_processing_times_out_then(tmp_path: Path) -> None:
    """An event claimed by a process that died waits PAYQL_WEBHOOK_LEASE_SECONDS for the sweeper; its
    processing job ends at the same time, so no event is taken over while an attempt is still at it."""
    registry = GatewayRegistry([])
    for lease in (120.0, 10.0):
        context = build_job_context(Settings(webhook_lease_seconds=lease, mailbox_path=tmp_path), registry)
        assert context.retry.lease_seconds == lease
        spec = next(spec for spec in context.specs() if spec.name == "process_webhook_event")
        assert spec.timeout_seconds == lease


def test_the_queued_jobs_heartbeat_comes_from_settings() -> None:
    """A dead worker's job waits about PAYQL_WORKER_JOB_HEARTBEAT_SECONDS and two sweeps (`jobs.heartbeat`)."""
    for heartbeat in (30, 3):
        settings = Settings(
            job_queue="redis", redis_url="redis://127.0.0.1:1/0", worker_job_heartbeat_seconds=heartbeat
        )
        queue = build_job_queue(settings, [])
        assert isinstance(queue, SaqJobQueue)
        assert queue.heartbeat_seconds == heartbeat
    assert isinstance(build_job_queue(Settings(), []), InProcessQueue)
