"""The staff console in a real browser: sign in with a staff token, refund part of an order and see
the timeline, answer a dispute, read the analytics; a shopper's token is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Page, expect

from db.models import Dispute, Payment, Refund
from gateways.sandbox.processor import SandboxProcessor
from payql.wiring import Services
from tests.console.kit import Snapshots
from tests.testkit import CHECKOUT, Shopper, checkout_input, email_of, make_price, settle


async def sign_in(page: Page, server: str, staff: Shopper, route: str = "") -> None:
    # The sign-in link carries the token in the fragment, which the browser never sends.
    await page.goto(f"{server}/console#token={staff.token}")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Orders")
    assert "token" not in page.url
    if route:
        await page.evaluate("route => { location.hash = route; }", route)


async def paid_order(shopper: Shopper, services: Services, amount: int, currency: str = "USD") -> Payment:
    price = await make_price(amount, currency, name="Console espresso grinder")
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, quantity=2)}))["checkout"]
    await settle(services)
    return await Payment.get(id=result["payment"]["id"])


async def test_staff_finds_an_order_refunds_part_of_it_once_and_sees_the_timeline(
    page: Page, server: str, admin: Shopper, shopper: Shopper, services: Services, snapshots: Snapshots
) -> None:
    payment = await paid_order(shopper, services, 8_000)
    order_id = str(payment.order_id)
    await sign_in(page, server, admin)

    await snapshots.take(page, "orders")
    await page.get_by_label("Order id").fill(order_id)
    await page.get_by_role("link", name=order_id).click()
    await expect(page.locator("#order-status")).to_have_text("PAID")

    await page.get_by_label("Amount (USD, empty for all that is left)").fill("12.50")
    await page.get_by_label("Refund reason").fill("Box arrived damaged")
    await page.get_by_role("button", name="Refund…").click()
    # A double click sends the same request twice: one idempotency key, one refund.
    await page.get_by_role("button", name="Confirm refund").dblclick()

    await expect(page.locator("#order-status")).to_have_text("PARTIALLY_REFUNDED")
    await expect(page.locator("#timeline")).to_contain_text("PARTIALLY_REFUNDED")
    await expect(page.locator("#payments-table .payment-refunded")).to_have_text("12.50 USD")
    await expect(page.locator("#refunds-table tbody tr")).to_have_count(1)
    await expect(page.locator("#refunds-table")).to_contain_text("Box arrived damaged")
    await expect(page.locator("#timeline")).to_contain_text("refund.")
    await snapshots.take(page, "order")
    await settle(services)
    refunds = await Refund.filter(payment_id=payment.id)
    assert [(r.amount, r.reason) for r in refunds] == [(1_250, "Box arrived damaged")]
    # The ledger: the capture and the refund as money, each with the payment (and refund) it moved.
    captured = page.locator("#ledger tbody tr", has_text="CAPTURED")
    await expect(captured).to_contain_text("160.00 USD")  # two at 80.00
    await expect(captured).to_contain_text(str(payment.id))
    refunded = page.locator("#ledger tbody tr", has_text="REFUNDED")
    await expect(refunded).to_have_count(1)
    await expect(refunded).to_contain_text("12.50 USD")
    await expect(refunded).to_contain_text(str(refunds[0].id))


async def test_staff_answers_a_dispute_with_a_note_and_submits_the_evidence_once(
    page: Page,
    server: str,
    admin: Shopper,
    shopper: Shopper,
    services: Services,
    sandbox: SandboxProcessor,
    snapshots: Snapshots,
) -> None:
    payment = await paid_order(shopper, services, 6_000)
    opened = await sandbox.create_dispute(payment.gateway_reference or "", "product_not_received")
    await settle(services)
    dispute = await Dispute.get(gateway="sandbox", gateway_reference=opened.id)
    await sign_in(page, server, admin, "#/disputes")

    await expect(page.get_by_role("link", name=str(dispute.id))).to_be_visible()
    await snapshots.take(page, "disputes")
    await page.get_by_role("link", name=str(dispute.id)).click()
    await expect(page.locator("#dispute-status-value")).to_have_text("NEEDS_RESPONSE")
    await page.get_by_role("textbox", name="Note", exact=True).fill("Signed for by J. Doe at the door.")
    await page.get_by_role("button", name="Add note").click()
    await expect(page.locator("#notes")).to_contain_text("Signed for by J. Doe at the door.")
    await snapshots.take(page, "dispute")

    await page.get_by_label("Extra text for the gateway").fill("Tracked parcel, delivered.")
    await page.get_by_role("button", name="Submit evidence…").click()
    await page.get_by_role("button", name="Confirm submission").dblclick()
    await expect(page.get_by_role("button", name="Evidence submitted")).to_be_disabled()
    await expect(page.locator("#dispute-status-value")).to_have_text("UNDER_REVIEW")
    at_gateway = await sandbox.retrieve_dispute(dispute.gateway_reference)
    assert at_gateway.submission_count == 1


ANALYTICS = """query($since: DateTime!, $until: DateTime!) {
  revenueByDay(since: $since, until: $until) {
    day currency gateway gross { amount decimal } refunded { decimal } net { decimal } }
  paymentOutcomes(since: $since, until: $until) { overall { succeeded failed total } } }"""


async def test_the_analytics_page_shows_the_figures_graphql_gives(
    page: Page, server: str, admin: Shopper, shopper: Shopper, services: Services, snapshots: Snapshots
) -> None:
    await paid_order(shopper, services, 4_200, "EUR")
    await paid_order(shopper, services, 900, "JPY")
    today = datetime.now(UTC).date()
    since, until = today - timedelta(days=6), today + timedelta(days=1)
    window = {"since": f"{since}T00:00:00Z", "until": f"{until}T00:00:00Z"}
    expected: dict[str, Any] = await admin.data(ANALYTICS, window)
    await sign_in(page, server, admin, "#/analytics")
    # The page draws its default range (the last 30 days) first; the test's range is picked after that.
    await expect(page.locator("#analytics-results[data-range]")).to_be_visible()

    await page.get_by_label("From (UTC)").fill(str(since))
    await page.get_by_label("To (UTC, inclusive)").fill(str(today))
    await page.get_by_role("button", name="Show").click()
    results = page.locator(f'#analytics-results[data-range="{window["since"]}/{until}T00:00:00.000Z"]')
    await expect(results).to_be_visible()
    await snapshots.take(page, "analytics")

    currencies = sorted({row["currency"] for row in expected["revenueByDay"]})
    assert {"EUR", "JPY"} <= set(currencies)
    for currency in currencies:
        section = results.locator(f'section[data-currency="{currency}"]')
        shown = await section.locator("table.revenue tbody tr").all_inner_texts()
        wanted = [r for r in expected["revenueByDay"] if r["currency"] == currency]
        assert [line.split("\t") for line in shown] == [
            [r["day"], r["gateway"], r["gross"]["decimal"], r["refunded"]["decimal"], r["net"]["decimal"]]
            for r in wanted
        ]
        # One bar per day, as tall as that day's gross in this currency: nothing summed across currencies.
        bars = {
            await bar.get_attribute("data-day"): int(await bar.get_attribute("data-amount") or "")
            for bar in await section.locator("svg rect").all()
        }
        per_day: dict[str, int] = {}
        for r in wanted:
            per_day[r["day"]] = per_day.get(r["day"], 0) + r["gross"]["amount"]
        assert bars == per_day
    overall = expected["paymentOutcomes"]["overall"]
    first_row = (await results.locator("#outcomes tbody tr").first.inner_text()).split("\t")
    assert first_row[:4] == ["all gateways", str(overall["succeeded"]), str(overall["failed"]), str(overall["total"])]


async def test_a_shoppers_token_is_refused(page: Page, server: str, shopper: Shopper) -> None:
    await page.goto(f"{server}/console#token={shopper.token}")
    await expect(page.get_by_role("alert")).to_contain_text("for staff only")
    await expect(page.locator("#nav")).to_be_hidden()
    assert await page.evaluate("sessionStorage.length") == 0


async def test_staff_find_a_customers_orders_by_email(
    page: Page, server: str, admin: Shopper, shopper: Shopper, other_shopper: Shopper, services: Services
) -> None:
    mine = await paid_order(shopper, services, 3_000)
    theirs = await paid_order(other_shopper, services, 3_100)
    await sign_in(page, server, admin)
    await page.get_by_label("Email").fill(email_of(shopper.subject).upper())
    await page.get_by_role("button", name="Find").click()
    await expect(page.get_by_role("link", name=str(mine.order_id))).to_be_visible()
    await expect(page.get_by_role("link", name=str(theirs.order_id))).to_have_count(0)
    await expect(page.locator("#orders-table tbody tr")).to_have_count(
        await Payment.filter(order__customer__external_id=shopper.subject).count()
    )
