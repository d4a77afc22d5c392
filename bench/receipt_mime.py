"""CPU to build and serialize one receipt's MIME message, as every paid order's receipt does.

Run: .venv/bin/python -m bench.receipt_mime
Measures `notifications.mime.build_message` + the mailer's From + `wire_bytes` (the bytes the
mailbox writes and SMTP sends) on a three-line receipt with an HTML alternative, and, as the
reference, the same message built with `email.message.EmailMessage` (policy.default:
set_content/add_alternative) and serialized with `policy.SMTP`, as PayQL did before. Also the
recipient check alone. CPU time of this process (`time.process_time`), median and range of rounds.
Timing lives here, never in the test suite.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.utils import format_datetime

from notifications.addresses import parse_mailbox
from notifications.mime import build_message, wire_bytes
from notifications.templates import DEDUPE_KEY_HEADER, message_id_for

ROUNDS, CALLS = 7, 1000
TO = "buyer-3f9a2c71d0@example.test"
SENDER = parse_mailbox("PayQL <payments@localhost>").header
DEDUPE_KEY = "receipt:0b7e5f0e-6a43-4c39-9d2f-3c1b8f0e2a11"
SUBJECT = "Your receipt for order 0B7E5F0E"
LINES = [("2", "Widget", "19.99 USD", "39.98 USD"), ("1", "Sticker", "0.05 USD", "0.05 USD")] * 2
TEXT = (
    "Thank you for your order 0b7e5f0e-6a43-4c39-9d2f-3c1b8f0e2a11.\n\nItems:\n"
    + "".join(f"  {q} x {name} at {unit} = {total}\n" for q, name, unit, total in LINES)
    + "\nTotal: 80.06 USD\nPaid: 80.06 USD\nPayment reference: sandbox ch_4f1c2d9e8a7b6c5d\n\n"
    + "Keep this email as your receipt.\n"
)
HTML = (
    "<html><body><p>Thank you for your order <code>0b7e5f0e-6a43-4c39-9d2f-3c1b8f0e2a11</code>.</p>"
    "<table><thead><tr><th>Qty</th><th>Item</th><th>Unit price</th><th>Amount</th></tr></thead><tbody>"
    + "".join(f"<tr><td>{q}</td><td>{name}</td><td>{unit}</td><td>{total}</td></tr>" for q, name, unit, total in LINES)
    + "</tbody></table><p><strong>Total: 80.06 USD</strong></p><p>Paid: 80.06 USD<br>"
    "Payment reference: <code>sandbox ch_4f1c2d9e8a7b6c5d</code></p><p>Keep this email as your receipt.</p>"
    "</body></html>\n"
)


def receipt_message(dedupe_key: str = DEDUPE_KEY) -> Message:
    """The receipt's message as `notifications.templates.render` builds it, From left to the mailer."""
    return build_message(
        to=TO,
        subject=SUBJECT,
        text=TEXT,
        html=HTML,
        date=format_datetime(datetime.now(UTC)),
        message_id=message_id_for(dedupe_key),
        extra={DEDUPE_KEY_HEADER: dedupe_key},
    )


def payql_receipt() -> bytes:
    message = receipt_message()
    message["From"] = SENDER
    return wire_bytes(message)


def email_message_receipt() -> bytes:
    message = EmailMessage()
    message["To"] = TO
    message["Subject"] = SUBJECT
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id_for(DEDUPE_KEY)
    message[DEDUPE_KEY_HEADER] = DEDUPE_KEY
    message.set_content(TEXT)
    message.add_alternative(HTML, subtype="html")
    message["From"] = SENDER
    return message.as_bytes(policy=policy.SMTP)


def recipient_check() -> object:
    return parse_mailbox(TO)


def cpu_us(function: Callable[[], object]) -> list[float]:
    function()
    samples = []
    for _ in range(ROUNDS):
        start = time.process_time_ns()
        for _ in range(CALLS):
            function()
        samples.append((time.process_time_ns() - start) / CALLS / 1000)
    return samples


def show(label: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    print(f"{label:<44} {median:8.1f} µs CPU  (rounds {min(samples):.1f}-{max(samples):.1f})")
    return median


def main() -> None:
    print(f"one receipt (4 lines, text + HTML), {ROUNDS} rounds of {CALLS}")
    ours = show("PayQL: compat32 build + wire_bytes", cpu_us(payql_receipt))
    reference = show("reference: EmailMessage + policy.SMTP", cpu_us(email_message_receipt))
    show("  of which PayQL's recipient check", cpu_us(recipient_check))
    print(f"PayQL's message costs {ours / reference:.2f} of the EmailMessage one ({reference / ours:.1f}x less CPU)")


if __name__ == "__main__":
    main()
