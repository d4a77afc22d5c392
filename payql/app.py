"""The ASGI application: /graphql (HTTP and websockets), health checks, /metrics, webhooks and gateways' own
routes (a development-only gateway's never in production: settings refuse that gateway there).

`create_app` builds everything that can be built before serving; the lifespan opens the database
and the services and closes them on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import cast

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.starlette import StarletteInstrumentor
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from db.config import close_database, open_database
from db.transaction import wait_abandoned
from payql.body_limit import BodySizeLimit
from payql.collector import settle_after_start_up
from payql.console import console_routes
from payql.data_keys import load_data_keys
from payql.graphql_metrics import GraphQLMetrics
from payql.graphql_tracing import GraphQLTracing
from payql.graphql_view import PayQLGraphQL
from payql.http_metrics import HttpMetricsMiddleware
from payql.live_frames import KeepWebSocketSend
from payql.load_shedding import InFlightLimit, LoadShedding
from payql.logging_setup import configure_logging
from payql.metrics import WEBHOOKS_RECEIVED, labelled
from payql.metrics_endpoint import metrics_route
from payql.path_lane import PathLane
from payql.rate_limit import RetryAfterMiddleware
from payql.readiness import Readiness
from payql.request_context import RequestIdMiddleware
from payql.retry_later import RetryLaterErrors, RetryLaterMiddleware, answered_code
from payql.route_host import route_host
from payql.security_headers import SecurityHeadersMiddleware
from payql.settings import Settings
from payql.shop import shop_routes
from payql.telemetry import ServerSpansWhenTracing, configure_tracing
from payql.wiring import Services, build_services, prepare_gateways
from resolvers import fault_points
from schema.assembly import build_schema
from schema.query_cost import QueryLimits
from schema.run_to_completion import finish_mutations
from webhooks.endpoint import WEBHOOKS_PREFIX, webhook_routes


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def app_from_environment() -> Starlette:
    """The app of one `payql serve --workers N` process, from the same environment as the parent."""
    from payql.installation_secrets import with_installation_secrets
    from payql.settings import load_settings

    return create_app(with_installation_secrets(load_settings()))


def _every_answers_layers(settings: Settings) -> list[Middleware]:
    return [
        # Before all else: every log line of the request carries its id, and every answer too.
        Middleware(RequestIdMiddleware),
        Middleware(HttpMetricsMiddleware),
        # Then, so everything after it (per-IP limits, audit records, dispute evidence, webhook
        # rows) reads the shopper's address from a trusted proxy's X-Forwarded-For, and only then.
        Middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies)),
        # Pure ASGI: every HTTP answer (CORS preflights and 429s included) gets the headers.
        Middleware(SecurityHeadersMiddleware),
    ]


def _traced(app: Starlette) -> Starlette:
    """`app` with OpenTelemetry's server span outermost, enclosing every other span of the request.
    Passed through while no SDK is installed (`ServerSpansWhenTracing`), and without its per-message
    spans: a span for every websocket frame costs each live subscriber more than the frame itself (a
    live update to N subscribers made N spans); the request's and the socket's own server spans stay."""
    StarletteInstrumentor.instrument_app(app)
    for layer in app.user_middleware:
        if cast(object, layer.cls) is OpenTelemetryMiddleware:
            layer.cls = ServerSpansWhenTracing  # type: ignore[assignment]  # a subclass, typed as its own
            layer.kwargs["exclude_spans"] = ["receive", "send"]
    return app


def create_app(settings: Settings) -> Starlette:
    configure_logging(settings.log_level, settings.effective_log_format)
    configure_tracing(settings.otel_exporter_otlp_endpoint, settings.otel_service_name)
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
        observers=[GraphQLMetrics, GraphQLTracing],
        # A pool with no connection to give is answered RATE_LIMITED, an unreachable Redis SERVICE_UNAVAILABLE,
        # each with Retry-After, not masked, and logged as a warning, not as an unexpected error.
        unmasked=(RetryLaterErrors,),
        busy=answered_code,
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
        # What start-up built is never walked again by a full collection, a pause every live
        # subscriber would feel; and young collections come less often (payql.collector).
        settle_after_start_up()
        try:
            yield
        finally:
            # Mutations whose callers left are still running: they end before the database closes.
            await finish_mutations(settings.shutdown_grace_seconds)
            await wait_abandoned()
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
    readiness = Readiness(redis=lambda: state["services"].redis)
    # The busiest routes first: Starlette tries each route's pattern in turn, on every request.
    routes: list[BaseRoute] = [
        Route("/graphql", BodySizeLimit(graphql, settings.graphql_max_body_bytes), methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readiness.endpoint),
        *console_routes(),
        *shop_routes(settings),
    ]
    metrics = metrics_route(settings, services=lambda: state["services"])
    if metrics is not None:
        routes.append(metrics)
    host = route_host(tokens=lambda: state["services"].tokens)
    for name, gateway in prepared.items():
        # Only enabled packages contribute routes, and production refuses the development-only ones.
        if gateway_routes := list(gateway.routes(host)):
            routes.append(Mount(f"/{name}", routes=gateway_routes))
    # Every answer's layers: each request's id, its metrics, the shopper's address from a trusted
    # proxy only, the security headers.
    every_answer = _every_answers_layers(settings)
    middleware = [
        *every_answer,
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
        Middleware(RetryLaterMiddleware),
        Middleware(LoadShedding, gate=in_flight, path="/graphql"),
    ]
    app = _traced(Starlette(routes=routes, middleware=middleware, lifespan=lifespan))
    app.state.in_flight = in_flight
    # Gateways' deliveries go through the layers every answer gets and the 503 of an exhausted pool,
    # not through those a browser's GraphQL request needs (CORS, a resolver's Retry-After, shedding:
    # a gateway's delivery is never shed), nor past this app's other routes: a webhook is the
    # busiest request after a checkout, and each layer is a few per cent of it.
    webhooks = _traced(
        Starlette(
            routes=webhook_routes(
                gateways=lambda: state["services"].deps.gateways,
                deliveries=lambda: state["services"].deliveries,
                count=lambda gateway, outcome: labelled(WEBHOOKS_RECEIVED, gateway, outcome).inc(),
            ),
            middleware=[*every_answer, Middleware(RetryLaterMiddleware)],
        )
    )
    app.add_middleware(PathLane, prefix=WEBHOOKS_PREFIX, lane=webhooks)
    # Outermost: a shared live frame is sent through the server's own send, not through every
    # layer's wrapper of it (none of them does anything with a websocket frame).
    app.add_middleware(KeepWebSocketSend)
    return app
