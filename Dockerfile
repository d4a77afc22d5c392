# PayQL production image: `payql migrate` then `payql serve`; run `payql worker` from the same image
# (deploy/compose.yaml runs each as its own service). The base is pinned; no dev dependencies.
FROM python:3.11.14-slim-bookworm AS build
ENV UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir "uv==0.13.8"
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY domain ./domain
COPY gateways ./gateways
COPY db ./db
COPY resolvers ./resolvers
COPY schema ./schema
COPY webhooks ./webhooks
COPY jobs ./jobs
COPY notifications ./notifications
COPY payql ./payql
RUN uv sync --frozen --no-dev

FROM python:3.11.14-slim-bookworm
RUN useradd --system --uid 10001 payql
WORKDIR /app
COPY --from=build /app /app
ENV PATH="/app/.venv/bin:$PATH" PAYQL_ENVIRONMENT=production PAYQL_HOST=0.0.0.0 PAYQL_PORT=8000
USER payql
EXPOSE 8000
# Healthy: a worker whose heartbeat is fresh, or a server whose /readyz answers 200 (same image, either role).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s CMD ["payql", "healthcheck"]
# Several replicas may start at once: `payql migrate` holds a PostgreSQL advisory lock, so one migrates.
CMD ["sh", "-c", "payql migrate && payql serve"]
