"""The webhook ingestion floor: a bare Starlette + asyncpg endpoint that verifies a Stripe-scheme
signature (the HMAC PayQL checks), parses the event and inserts it once into the same
`webhook_events` table, in one statement, then acknowledges.

What it leaves out is what PayQL adds to the same work: its middleware, the gateway registry, the
ORM, encryption of the stored body, header redaction, metrics and the queued processing. `bench.webhooks`
runs it with uvicorn in a process of its own:

  FLOOR_DATABASE_URL    postgresql://… of the benchmark's database
  FLOOR_WEBHOOK_SECRET  the secret the deliveries are signed with
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.floor_pool import open_floor_pool
from gateways.errors import WebhookRejected
from gateways.stripe_signature import SIGNATURE_HEADER, verify_signature

INSERT = (
    "INSERT INTO webhook_events (gateway, event_id, event_type, status, attempts, headers, body, source_ip,"
    " received_at) VALUES ('floor', $1, $2, 'RECEIVED', 0, '{}', $3, $4, now())"
    " ON CONFLICT DO NOTHING RETURNING id"
)
state: dict[str, asyncpg.Pool] = {}


async def receive(request: Request) -> JSONResponse:
    body = await request.body()
    try:
        verify_signature(
            request.headers.get(SIGNATURE_HEADER), body, [os.environ["FLOOR_WEBHOOK_SECRET"]], now=int(time.time())
        )
    except WebhookRejected:
        return JSONResponse({"error": "rejected"}, status_code=400)
    event = json.loads(body)
    client = request.client.host if request.client else None
    async with state["pool"].acquire() as db:
        row_id = await db.fetchval(INSERT, event["id"], event["type"], body.decode(), client)
    return JSONResponse({"received": True, "duplicate": row_id is None})


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    state["pool"] = await open_floor_pool(os.environ["FLOOR_DATABASE_URL"])
    try:
        yield
    finally:
        await state["pool"].close()


app = Starlette(routes=[Route("/webhooks/floor", receive, methods=["POST"])], lifespan=lifespan)
