"""The fan-out floor: the least a server can do to push one status change to N websockets.

A bare Starlette app on the same PostgreSQL and Redis as PayQL, doing the same work per change:
one Redis pub/sub connection, one read of the order row per change, the new status sent to every
connected websocket. No GraphQL, no authentication, no per-subscriber bookkeeping. `bench.fanout`
runs it with uvicorn in a process of its own, configured by the environment:

  FLOOR_DATABASE_URL  postgresql://… of the benchmark's database
  FLOOR_REDIS_URL     redis://…
  FLOOR_CHANNEL       the channel PayQL publishes the order's changes on (prefix included)
  FLOOR_ORDER_ID      the order whose status is pushed
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bench.floor_pool import open_floor_pool

ORDER_STATUS = "SELECT status FROM orders WHERE id = $1"
sockets: set[WebSocket] = set()
state: dict[str, asyncpg.Pool] = {}


async def read_status() -> str:
    status: str = await state["pool"].fetchval(ORDER_STATUS, os.environ["FLOOR_ORDER_ID"])
    return status


async def broadcast_changes(redis: Redis) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(os.environ["FLOOR_CHANNEL"])
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        payload = json.dumps({"status": await read_status()})
        # From this one loop, one socket after another, as PayQL writes a shared frame: a task a socket
        # (`asyncio.gather`) cost the floor more a subscriber than PayQL's whole send.
        for socket in list(sockets):
            with contextlib.suppress(Exception):
                await socket.send_text(payload)


async def subscriber(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(json.dumps({"status": await read_status()}))
    sockets.add(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        sockets.discard(websocket)


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    state["pool"] = await open_floor_pool(os.environ["FLOOR_DATABASE_URL"])
    redis = Redis.from_url(os.environ["FLOOR_REDIS_URL"])
    task = asyncio.create_task(broadcast_changes(redis))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await redis.aclose()
        await state["pool"].close()


app = Starlette(routes=[WebSocketRoute("/ws", subscriber)], lifespan=lifespan)
