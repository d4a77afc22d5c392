"""`PathLane`: HTTP requests under its prefix reach its own app, everything else the main app; and
the app's webhook lane keeps every answer's layers while a browser's layers stay on /graphql."""

from __future__ import annotations

import httpx
from starlette.types import Message, Receive, Scope, Send

from payql.path_lane import PathLane
from payql.security_headers import STRICT_CSP

ORIGIN = "https://shop.example"  # the test settings' CORS origin


class Named:
    """An ASGI app that notes each scope it serves under its name."""

    def __init__(self, name: str, served: list[tuple[str, str]]) -> None:
        self.name, self.served = name, served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.served.append((self.name, scope["path"]))


async def test_only_http_requests_under_the_prefix_take_the_lane() -> None:
    served: list[tuple[str, str]] = []
    lane = PathLane(Named("main", served), prefix="/webhooks/", lane=Named("lane", served))

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(_: Message) -> None:
        return None

    for scope in (
        {"type": "http", "path": "/webhooks/sandbox"},
        {"type": "http", "path": "/api/webhooks/sandbox", "root_path": "/api"},
        {"type": "http", "path": "/graphql"},
        {"type": "http", "path": "/webhooks"},
        {"type": "websocket", "path": "/webhooks/sandbox"},
    ):
        await lane(scope, receive, send)
    assert served == [
        ("lane", "/webhooks/sandbox"),
        ("lane", "/api/webhooks/sandbox"),
        ("main", "/graphql"),
        ("main", "/webhooks"),
        ("main", "/webhooks/sandbox"),
    ]


async def test_a_webhook_answer_has_every_answers_headers_and_no_browsers_cors(http: httpx.AsyncClient) -> None:
    browser = {"origin": ORIGIN, "x-request-id": "lane-test-1"}
    webhook = await http.post("/webhooks/sandbox", content=b"{}", headers=browser)
    graphql = await http.post("/graphql", json={"query": "{ products { id } }"}, headers=browser)
    assert webhook.status_code == 400  # unsigned: rejected by the adapter, so the lane reached the route
    assert webhook.headers["x-request-id"] == "lane-test-1"
    assert webhook.headers["content-security-policy"] == STRICT_CSP
    assert webhook.headers["x-content-type-options"] == "nosniff"
    # A browser's script may read a GraphQL answer from the shop's origin, never a webhook's.
    assert graphql.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in webhook.headers
    # A method the webhook route does not take is refused as the main app refused it.
    refused = await http.get("/webhooks/sandbox")
    assert refused.status_code == 405 and refused.headers["content-security-policy"] == STRICT_CSP
