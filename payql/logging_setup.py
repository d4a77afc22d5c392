"""Logging configuration: one line per event, and every line passes the card-number redaction filter.

Nothing may log a request body; even so, a card-like number that slips into a message, its
arguments or an exception is replaced before any handler writes it.
"""

from __future__ import annotations

import logging
import sys

from domain.card_numbers import contains_card_number, redact_card_numbers


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


_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)))


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Attach the redaction filter to every handler of `logger` (root by default), once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, CardNumberRedactionFilter) for f in handler.filters):
            handler.addFilter(CardNumberRedactionFilter())


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(handler)
    root.setLevel(level.upper())
    install_redaction(root)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "strawberry"):
        install_redaction(logging.getLogger(name))
