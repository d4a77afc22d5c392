"""One receipt per paid order, also when the order comes back to PAID: after a refund that fails
once it had succeeded, and after a dispute the merchant won. Waits are on the sandbox's deliveries
and the job queue running dry (`settle`), never on time."""

from __future__ import annotations

from db.models import OutboxMessage, Payment, Refund
from gateways.sandbox.processor import SandboxProcessor
from payql.wiring import Services
from tests.features.test_refunds import refund
from tests.resolvers.test_disputes import open_dispute, paid_payment
from tests.smtp_server import SmtpServer
from tests.testkit import Shopper, email_of, settle

RECEIPT_SUBJECT = "Your receipt for order"


def receipts(mail_server: SmtpServer, shopper: Shopper) -> list[str]:
    return [
        str(message["subject"])
        for message in mail_server.messages_to(email_of(shopper.subject))
        if str(message["subject"]).startswith(RECEIPT_SUBJECT)
    ]


async def assert_one_receipt(mail_server: SmtpServer, shopper: Shopper, payment: Payment) -> None:
    assert len(receipts(mail_server, shopper)) == 1
    queued = await OutboxMessage.filter(kind="receipt").values_list("payload", flat=True)
    assert [p for p in queued if isinstance(p, dict) and p.get("order_id") == str(payment.order_id)] == [
        {"order_id": str(payment.order_id)}
    ]


async def test_a_refund_that_fails_after_succeeding_sends_no_second_receipt(
    shopper: Shopper, admin: Shopper, sandbox: SandboxProcessor, services: Services, mail_server: SmtpServer
) -> None:
    payment = await paid_payment(shopper, services)
    assert len(receipts(mail_server, shopper)) == 1

    done = await refund(admin, str(payment.id), 2_000)
    refund_row = await Refund.get(id=done["refund"]["id"])
    await sandbox.fail_refund(refund_row.gateway_reference or "")
    await settle(services)

    assert (await (await Payment.get(id=payment.id)).order).status == "PAID"
    await assert_one_receipt(mail_server, shopper, payment)


async def test_a_won_dispute_sends_no_second_receipt(
    shopper: Shopper, sandbox: SandboxProcessor, services: Services, mail_server: SmtpServer
) -> None:
    payment = await paid_payment(shopper, services)
    dispute = await open_dispute(sandbox, services, payment)
    assert (await (await Payment.get(id=payment.id)).order).status == "DISPUTED"

    await sandbox.close_dispute(dispute.gateway_reference, won=True)
    await settle(services)

    assert (await (await Payment.get(id=payment.id)).order).status == "PAID"
    await assert_one_receipt(mail_server, shopper, payment)
