"""Log lines are JSON in production and readable text in development; each carries the request id
(also answered in X-Request-Id) and the ids bound in scope, keeps every `extra=` field, and never a
card number."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from domain.log_context import log_scope
from gateways.sandbox.processor import SandboxProcessor
from jobs.queue import JobSpec
from payql.job_observation import observed
from payql.logging_setup import build_handler
from payql.settings import Settings
from payql.wiring import Services
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, settle

PAN = "4111111111111111"
NAMESPACE = "tests.structured"


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def json_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger(NAMESPACE)
    handler = build_handler("json", stream)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def root_json() -> Iterator[io.StringIO]:
    """JSON lines of the webhook endpoint's logger, written by the handler production uses."""
    stream = io.StringIO()
    handler = build_handler("json", stream)
    handler.addFilter(logging.Filter("webhooks"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def test_a_json_line_keeps_every_extra_field_and_the_scope(json_logger: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_logger
    with log_scope(order_id="ord-1", payment_id="pay-1"):
        logger.info("captured %s", "pay-1", extra={"gateway": "stripe", "amount": 1200, "payment_id": "pay-2"})
    logger.info("outside")
    inside, outside = lines(stream)
    assert inside["message"] == "captured pay-1"
    assert inside["level"] == "INFO" and inside["logger"] == NAMESPACE and inside["timestamp"]
    assert (inside["gateway"], inside["amount"], inside["order_id"]) == ("stripe", 1200, "ord-1")
    assert inside["payment_id"] == "pay-2"  # extra= wins over the scope
    assert inside["request_id"] == "-" and outside["request_id"] == "-"
    assert "order_id" not in outside


def test_json_lines_redact_card_numbers_everywhere(json_logger: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_logger
    try:
        raise ValueError(f"card {PAN} declined")
    except ValueError:
        logger.exception("failed for %s", PAN, extra={"note": f"pan={PAN}", "numbers": [PAN]}, stack_info=True)
    text = stream.getvalue()
    assert PAN not in text and "4111" not in text
    (line,) = lines(stream)
    assert "[REDACTED PAN]" in line["message"] and "[REDACTED PAN]" in line["note"]
    assert "ValueError" in line["exc_info"] and "[REDACTED PAN]" in line["exc_info"]


def test_text_lines_carry_the_request_id() -> None:
    stream = io.StringIO()
    logger = logging.getLogger(f"{NAMESPACE}.text")
    handler = build_handler("text", stream)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("plain %s", PAN)
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().rstrip().endswith(f"INFO {NAMESPACE}.text [-] plain [REDACTED PAN]")


def test_production_logs_json_and_development_text_unless_told() -> None:
    assert Settings().effective_log_format == "text"
    assert Settings(log_format="json").effective_log_format == "json"


async def test_the_request_id_is_in_the_log_line_and_the_response_header(
    http: httpx.AsyncClient, root_json: io.StringIO
) -> None:
    given = f"ops-{uuid.uuid4().hex}"
    answered = await http.post("/webhooks/sandbox", content=b"{}", headers={"x-request-id": given})
    generated = await http.post("/webhooks/sandbox", content=b"{}")
    assert answered.status_code == generated.status_code == 400
    assert answered.headers["x-request-id"] == given
    fresh = generated.headers["x-request-id"]
    assert fresh and fresh != given
    rejected = [line for line in lines(root_json) if line["message"].startswith("webhook rejected")]
    assert [line["request_id"] for line in rejected] == [given, fresh]


@pytest.mark.parametrize("given", ["r" * 65, f"req-{PAN}", "tab\there"])
async def test_a_request_id_the_audit_trail_would_refuse_is_replaced_in_the_header(
    http: httpx.AsyncClient, given: str
) -> None:
    response = await http.get("/healthz", headers={"x-request-id": given})
    answered = response.headers["x-request-id"]
    assert answered != given and len(answered) <= 64 and "4111" not in answered


async def test_a_job_run_logs_its_name_and_the_ids_it_works_on(
    json_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_logger

    async def process(event_row_id: int) -> None:
        logger.info("processing")

    await observed(JobSpec("process_webhook_event", process)).function(event_row_id=42)
    (line,) = lines(stream)
    assert (line["job"], line["webhook_event_id"]) == ("process_webhook_event", "42")


async def test_a_batch_job_logs_its_events_ids(json_logger: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_logger

    async def process(event_row_ids: list[int]) -> None:
        logger.info("processing")

    await observed(JobSpec("process_webhook_events", process)).function(event_row_ids=[42, 43])
    (line,) = lines(stream)
    assert (line["job"], line["webhook_event_ids"]) == ("process_webhook_events", "42,43")


@pytest.fixture
def resolvers_json() -> Iterator[io.StringIO]:
    """JSON lines of the use cases' loggers, written by the handler production uses."""
    stream = io.StringIO()
    handler = build_handler("json", stream)
    handler.addFilter(logging.Filter("resolvers"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


async def test_a_checkouts_log_lines_carry_its_order_and_payment(
    shopper: Shopper, sandbox: SandboxProcessor, services: Services, resolvers_json: io.StringIO
) -> None:
    price = await make_price(1300)
    sandbox.arm_fault("unavailable", 1)  # the charge fails before the gateway took it: one warning line
    try:
        answer = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    finally:
        sandbox.clear_faults()
    await settle(services)
    [warning] = [line for line in lines(resolvers_json) if line["message"].startswith("gateway unavailable")]
    assert warning["order_id"] == answer["order"]["id"]
    assert warning["payment_id"] == answer["payment"]["id"]
    assert warning["principal"] == f"customer:{shopper.subject}"
