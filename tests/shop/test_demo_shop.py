"""The demo shop in a real browser: buy with 4242…, and with 4000 0025 0000 3155 through the
sandbox's 3-D Secure page, and watch PAID arrive live; subscribe to a plan of the demo catalog the
same two ways and watch ACTIVE arrive live; production does not serve the shop."""

from __future__ import annotations

import uuid

import httpx
from playwright.async_api import Page, expect

from db.models import Subscription
from db.seed_demo import seed_demo_catalog
from payql.app import create_app
from tests.console.kit import Snapshots
from tests.console.test_console_page import production_settings
from tests.testkit import Shopper, make_price


async def buy(page: Page, server: str, shopper: Shopper, card: str, snapshots: Snapshots) -> None:
    name = f"Demo mug {uuid.uuid4().hex[:6]}"
    await make_price(1_200, "USD", name=name)
    await page.goto(f"{server}/shop#token={shopper.token}")
    await page.get_by_role("button", name=f"Add {name} at 12.00 USD to the cart").click()
    await page.get_by_label("Card number").fill(card)
    await page.get_by_label("CVC").fill("123")
    await snapshots.take(page, "shop-cart")
    await page.get_by_role("button", name="Pay").click()


async def test_a_shopper_buys_with_a_card_and_sees_paid(
    page: Page, server: str, shopper: Shopper, snapshots: Snapshots
) -> None:
    card_seen: list[str] = []
    page.on("request", lambda r: card_seen.append(r.url) if "4242424242424242" in (r.post_data or "") else None)
    await buy(page, server, shopper, "4242 4242 4242 4242", snapshots)
    await expect(page.locator("#order-status")).to_have_text("PAID")
    await snapshots.take(page, "shop-paid")
    assert card_seen == [f"{server}/sandbox/tokens"]  # the card number never goes to /graphql
    await page.get_by_role("link", name="My orders and subscriptions").click()
    await expect(page.locator("#my-orders")).to_contain_text("PAID")


async def test_3d_secure_on_the_sandbox_page_then_paid_arrives_live(page: Page, server: str, shopper: Shopper) -> None:
    await buy(page, server, shopper, "4000 0025 0000 3155", Snapshots(None))
    await expect(page.locator("#order-status")).to_have_text("REQUIRES_ACTION")
    async with page.context.expect_page() as opened:
        await page.get_by_role("link", name="Confirm the payment with your bank (3-D Secure)").click()
    bank = await opened.value
    await bank.get_by_role("button", name="Complete").click()
    await expect(page.locator("#order-status")).to_have_text("PAID")


async def subscribe(page: Page, server: str, shopper: Shopper, card: str, snapshots: Snapshots) -> None:
    await seed_demo_catalog()
    await page.goto(f"{server}/shop#token={shopper.token}")
    plan = page.get_by_role("button", name="Subscribe to Coffee club at 19.00 USD a month")
    await expect(plan).to_be_visible()
    await snapshots.take(page, "shop-catalog")  # with the demo catalog in it
    await plan.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Subscribe to Coffee club")
    await page.get_by_label("Card number").fill(card)
    await page.get_by_label("CVC").fill("123")
    await snapshots.take(page, "shop-subscribe")
    await page.get_by_role("button", name="Subscribe", exact=True).click()


async def test_a_shopper_subscribes_to_a_demo_plan_and_sees_it_active(
    page: Page, server: str, shopper: Shopper, snapshots: Snapshots
) -> None:
    card_seen: list[str] = []
    page.on("request", lambda r: card_seen.append(r.url) if "4242424242424242" in (r.post_data or "") else None)
    await subscribe(page, server, shopper, "4242 4242 4242 4242", snapshots)
    await expect(page.locator("#subscription-status")).to_have_text("ACTIVE")
    assert card_seen == [f"{server}/sandbox/tokens"]
    [subscription] = await Subscription.filter(customer__external_id=shopper.subject).prefetch_related("price")
    assert (subscription.status, subscription.price.lookup_key) == ("ACTIVE", "club_monthly_usd")
    await page.get_by_role("link", name="My orders and subscriptions").click()
    await expect(page.locator("#my-subscriptions")).to_contain_text(f"{subscription.id} ACTIVE 19.00 USD a month")
    await snapshots.take(page, "shop-my-orders")


async def test_a_subscription_passes_3d_secure_then_active_arrives_live(
    page: Page, server: str, shopper: Shopper
) -> None:
    await subscribe(page, server, shopper, "4000 0025 0000 3155", Snapshots(None))
    await expect(page.locator("#subscription-status")).to_have_text("INCOMPLETE")
    async with page.context.expect_page() as opened:
        await page.get_by_role("link", name="Confirm the payment with your bank (3-D Secure)").click()
    bank = await opened.value
    await bank.get_by_role("button", name="Complete").click()
    await expect(page.locator("#subscription-status")).to_have_text("ACTIVE")


async def test_production_does_not_serve_the_shop() -> None:
    app = create_app(production_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payql.test") as client:
        assert (await client.get("/shop")).status_code == 404
        assert (await client.get("/shop/static/shop.js")).status_code == 404


async def test_the_shop_page_has_a_strict_csp_and_no_inline_script(http: httpx.AsyncClient, server: str) -> None:
    page = await http.get("/shop")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp
    assert f"connect-src 'self' {server.replace('http', 'ws', 1)};" in csp
    assert '<script type="module" src="/shop/static/shop.js"></script>' in page.text
    assert page.text.count("<script") == 1 and " style=" not in page.text
