"""No card number reaches a log handler: not in the message, its %-arguments, an `extra` field or
an exception's traceback, whichever logger it was sent to."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from payql.logging_setup import CardNumberRedactionFilter, configure_logging, install_redaction

PAN = "4111111111111111"
SPACED_PAN = "5555 5555 5555 4444"
MARKER = "[REDACTED PAN]"
NAMESPACE = "tests.redaction"


def card_digits_in(output: str) -> list[str]:
    """Any 4-digit group of the test cards that made it to the output."""
    return [group for group in ("4111", "1111", "5555", "4444") if group in output]


@pytest.fixture
def root_handler() -> Iterator[logging.StreamHandler[io.StringIO]]:
    """A handler on the root logger, redacted by `configure_logging` like the app's handlers."""
    root = logging.getLogger()
    level = root.level
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    # Only this file's records: the app running in the same process may log meanwhile.
    handler.addFilter(logging.Filter(NAMESPACE))
    root.addHandler(handler)
    try:
        configure_logging("INFO")
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def root_output(root_handler: logging.StreamHandler[io.StringIO]) -> io.StringIO:
    return root_handler.stream


@pytest.fixture
def own_logger() -> Iterator[tuple[logging.Logger, logging.StreamHandler[io.StringIO]]]:
    """A non-propagating logger with its own handler, redacted by `install_redaction`."""
    logger = logging.getLogger("tests.redaction.own")
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        install_redaction(logger)
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def test_configure_logging_redacts_a_card_in_the_message(root_output: io.StringIO) -> None:
    logging.getLogger("tests.redaction.checkout").warning(f"declined card {PAN} for order 1234")
    output = root_output.getvalue()
    assert output == f"WARNING tests.redaction.checkout declined card {MARKER} for order 1234\n"


def test_configure_logging_redacts_a_card_in_percent_args(root_output: io.StringIO) -> None:
    logger = logging.getLogger("tests.redaction.webhooks")
    logger.warning("card %s, amount %d %s", SPACED_PAN, 1999, "USD")
    logger.warning("card %(pan)s", {"pan": PAN})
    logger.warning("card %d", int(PAN))
    lines = root_output.getvalue().splitlines()
    assert lines == [
        f"WARNING tests.redaction.webhooks card {MARKER}, amount 1999 USD",
        f"WARNING tests.redaction.webhooks card {MARKER}",
        f"WARNING tests.redaction.webhooks card {MARKER}",
    ]


def test_configure_logging_redacts_a_card_in_an_extra_field(
    root_handler: logging.StreamHandler[io.StringIO],
) -> None:
    root_handler.setFormatter(logging.Formatter("%(message)s card=%(card)s ip=%(source_ip)s"))
    logging.getLogger("tests.redaction.audit").warning(
        "payment failed", extra={"card": SPACED_PAN, "source_ip": "10.0.0.1"}
    )
    assert root_handler.stream.getvalue() == f"payment failed card={MARKER} ip=10.0.0.1\n"


def test_configure_logging_redacts_a_card_in_a_traceback(root_output: io.StringIO) -> None:
    logger = logging.getLogger("tests.redaction.gateways")
    pan = PAN
    try:
        try:
            raise KeyError(f"no token for {SPACED_PAN}")
        except KeyError as inner:
            raise ValueError(f"gateway refused card {pan}") from inner
    except ValueError:
        logger.exception("charge crashed for %s", pan)
    output = root_output.getvalue()
    assert "Traceback (most recent call last)" in output
    assert "ValueError: gateway refused card [REDACTED PAN]" in output
    assert "KeyError: 'no token for [REDACTED PAN]'" in output
    assert output.startswith(f"ERROR tests.redaction.gateways charge crashed for {MARKER}\n")
    assert card_digits_in(output) == []


def test_configure_logging_keeps_text_without_cards_intact(root_output: io.StringIO) -> None:
    message = "order 0d9c8a63-1c4b-4ec2-9a57-3b5f6f2f9e11 shipped as 1Z999AA10123456784, total 100045678912"
    logging.getLogger("tests.redaction.orders").info(message)
    assert root_output.getvalue() == f"INFO tests.redaction.orders {message}\n"


def test_configure_logging_installs_the_filter_once(root_handler: logging.StreamHandler[io.StringIO]) -> None:
    configure_logging("INFO")
    configure_logging("DEBUG")
    assert sum(isinstance(f, CardNumberRedactionFilter) for f in root_handler.filters) == 1
    assert logging.getLogger().level == logging.DEBUG


def test_install_redaction_covers_a_named_loggers_handlers(
    own_logger: tuple[logging.Logger, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, handler = own_logger
    handler.setFormatter(logging.Formatter("%(message)s | %(pan)s"))
    logger.info("card %s", PAN, extra={"pan": SPACED_PAN})
    try:
        raise RuntimeError(PAN)
    except RuntimeError:
        logger.error("boom %s", SPACED_PAN, exc_info=True, extra={"pan": "none"})
    output = handler.stream.getvalue()
    assert output.startswith(f"card {MARKER} | {MARKER}\nboom {MARKER} | none\n")
    assert f"RuntimeError: {MARKER}" in output
    assert card_digits_in(output) == []


def test_the_filter_redacts_a_record_handled_by_several_handlers(
    own_logger: tuple[logging.Logger, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, first = own_logger
    second = logging.StreamHandler(io.StringIO())
    logger.addHandler(second)
    try:
        install_redaction(logger)
        logger.warning("card %s", PAN)
    finally:
        logger.removeHandler(second)
    assert first.stream.getvalue() == f"card {MARKER}\n"
    assert second.stream.getvalue() == f"card {MARKER}\n"


@pytest.mark.parametrize("value", [int(PAN), {"number": PAN}, [SPACED_PAN]], ids=["int", "dict", "list"])
def test_a_non_string_extra_field_is_redacted(
    own_logger: tuple[logging.Logger, logging.StreamHandler[io.StringIO]], value: object
) -> None:
    logger, handler = own_logger
    handler.setFormatter(logging.Formatter("%(message)s %(card)s"))
    logger.warning("payment failed", extra={"card": value})
    assert card_digits_in(handler.stream.getvalue()) == []


@pytest.mark.parametrize(
    "written",
    [
        "4111.1111.1111.1111",
        "4111\u00a01111\u00a01111\u00a01111",
        "4111_1111_1111_1111",
        "4111/1111/1111/1111",
        "".join(chr(0xFF10 + int(digit)) for digit in PAN),
        # graphql-core's print of a long source line: wrapped, with a "  | " gutter.
        '"4111 1111 1111 111\n  | 1"',
    ],
    ids=["dots", "nbsp", "underscores", "slashes", "full-width", "wrapped-source"],
)
def test_any_spelling_of_a_card_is_redacted(root_output: io.StringIO, written: str) -> None:
    logging.getLogger("tests.redaction.spellings").warning("client sent %s today", written)
    output = root_output.getvalue()
    assert MARKER in output
    assert card_digits_in(output) == []
    assert output.endswith(" today\n")
