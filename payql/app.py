"""The ASGI application: /graphql (HTTP and websockets), health checks, webhooks and gateways' own routes
(a development-only gateway's never in production: settings refuse that gateway there).

`create_app` builds everything that can be built before serving; the lifespan opens the database
and the services and closes them on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from tortoise import connections

from db.config import close_database, open_database
from payql.body_limit import BodySizeLimit
from payql.data_keys import load_data_keys
from payql.exhaustion import ExhaustionAsRateLimited, ExhaustionMiddleware
from payql.graphql_view import PayQLGraphQL
from payql.load_shedding import InFlightLimit, LoadShedding
from payql.logging_setup import configure_logging
from payql.rate_limit import RetryAfterMiddleware
from payql.route_host import route_host
from payql.security_headers import SecurityHeadersMiddleware
from payql.settings import Settings
from payql.wiring import Services, build_services, prepare_gateways
from resolvers import fault_points
from schema.assembly import build_schema
from schema.query_cost import QueryLimits
from webhooks.endpoint import webhook_routes


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(_: Request) -> JSONResponse:
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


def create_app(settings: Settings) -> Starlette:
    configure_logging(settings.log_level)
    schema = build_schema(
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_tokens=settings.graphql_max_tokens,
        query_limits=QueryLimits(
            max_fields=settings.graphql_max_fields,
            max_cost=settings.graphql_max_cost,
            default_list_size=settings.graphql_default_list_size,
        ),
        introspection=not settings.is_production,
        suggestions=not settings.is_production,
        # A pool with no connection to give is answered RATE_LIMITED with Retry-After, not masked.
        unmasked=(ExhaustionAsRateLimited,),
    )
    if settings.fault_point and not settings.is_production:
        fault_points.arm(settings.fault_point, settings.fault_marker_path)
    prepared = prepare_gateways(settings)
    data_keys = load_data_keys(settings)
    state: dict[str, Services] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await open_database(settings.database_url, data_keys)
        services = await build_services(settings, prepared)
        state["services"] = services
        app.state.services = services
        try:
            yield
        finally:
            await services.aclose()
            await close_database()

    graphql = PayQLGraphQL(
        services=lambda: state["services"],
        schema=schema,
        graphql_ide=None if settings.is_production else "graphiql",
        allow_queries_via_get=False,
        connection_init_wait_timeout=timedelta(seconds=10),
        allowed_origins=settings.cors_origins,
        # Only graphql-transport-ws: its handler ends a socket's session when the token expires.
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
    )
    in_flight = InFlightLimit(settings.max_in_flight_requests)
    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/graphql", BodySizeLimit(graphql, settings.graphql_max_body_bytes), methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
    ]
    routes += webhook_routes(
        gateways=lambda: state["services"].deps.gateways, on_stored=lambda: state["services"].enqueue_webhook
    )
    host = route_host(tokens=lambda: state["services"].tokens)
    for name, gateway in prepared.items():
        # Only enabled packages contribute routes, and production refuses the development-only ones.
        if gateway_routes := list(gateway.routes(host)):
            routes.append(Mount(f"/{name}", routes=gateway_routes))
    middleware = [
        # Pure ASGI, outermost: every HTTP answer (CORS preflights and 429s included) gets the headers.
        Middleware(SecurityHeadersMiddleware),
        Middleware(RetryAfterMiddleware),
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            max_age=600,
        ),
        # Inside CORS: a 503 for an exhausted pool or a shed request still gets the CORS and
        # security headers. Shedding comes before routing, so a shed request's body is never read.
        Middleware(ExhaustionMiddleware),
        Middleware(LoadShedding, gate=in_flight, path="/graphql"),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.in_flight = in_flight
    return app
