"""Logging configuration: one line per event, as readable text (development) or JSON (production),
with the request id and the identifiers in scope on every line, and every line passes the
card-number redaction filter.

Nothing may log a request body; even so, a card-like number that slips into a message, its
arguments, an `extra=` field or an exception is replaced before any handler writes it.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

from domain.card_numbers import contains_card_number, redact_card_numbers
from payql.request_context import log_fields

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class CardNumberRedactionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A bad format string: logging reports it itself; still never let a PAN through.
            message = f"{record.msg} {record.args}"
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = redact_card_numbers(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact_card_numbers(record.exc_text)
        for key, value in list(vars(record).items()):
            if key in _STANDARD_ATTRS or key in ("message", "asctime"):
                continue
            if isinstance(value, str):
                setattr(record, key, redact_card_numbers(value))
            elif contains_card_number(value):
                setattr(record, key, redact_card_numbers(str(value)))
        return True


class LogContextFilter(logging.Filter):
    """Adds the request id and the identifiers bound in this context (`request_context`) to the
    record; a field passed with `extra=` wins over the context's."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_fields().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        return True


class RedactingJsonFormatter(JsonFormatter):
    """python-json-logger formats an exception again from `exc_info`, past the filter's redacted
    `exc_text`: redact that rendering too."""

    def formatException(self, ei: ExcInfo) -> str:
        return redact_card_numbers(str(super().formatException(ei)))

    def formatStack(self, stack_info: str) -> str:
        return redact_card_numbers(str(super().formatStack(stack_info)))


_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)))


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return RedactingJsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
    return logging.Formatter(TEXT_FORMAT)


def build_handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing `log_format` lines to `stream` (standard error by default), with the
    context and redaction filters."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    install_filters(handler)
    return handler


def install_filters(handler: logging.Handler) -> None:
    """The context filter, then the redaction filter (which also reads the context's fields), once."""
    if not any(isinstance(f, LogContextFilter) for f in handler.filters):
        handler.addFilter(LogContextFilter())
    if not any(isinstance(f, CardNumberRedactionFilter) for f in handler.filters):
        handler.addFilter(CardNumberRedactionFilter())


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Attach the filters to every handler of `logger` (root by default), once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        install_filters(handler)


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(build_handler(log_format))
    root.setLevel(level.upper())
    install_redaction(root)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "strawberry"):
        install_redaction(logging.getLogger(name))
