"""The `payql` command: serve, migrate, seed-demo and (development only) token."""

from __future__ import annotations

import asyncio
import sys

import typer
import uvicorn

from payql.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="PayQL: a self-hosted GraphQL payment API server.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


def _ensure_data_folder(settings: Settings) -> None:
    from pathlib import Path

    for url_path in (
        (settings.database_url.removeprefix("sqlite://"),) if settings.database_url.startswith("sqlite://") else ()
    ):
        if url_path != ":memory:":
            Path(url_path).parent.mkdir(parents=True, exist_ok=True)
    if settings.sandbox_state_path is not None:
        settings.sandbox_state_path.parent.mkdir(parents=True, exist_ok=True)


@app.command()
def serve(host: str | None = None, port: int | None = None) -> None:
    """Serve the API (GraphQL at /graphql)."""
    settings = _settings()
    _ensure_data_folder(settings)
    from payql.app import create_app

    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        proxy_headers=True,
        log_config=None,
    )


@app.command()
def migrate() -> None:
    """Apply every pending database migration."""
    settings = _settings()
    _ensure_data_folder(settings)
    from db.migrate import apply_migrations

    asyncio.run(apply_migrations(settings.database_url))
    typer.echo("database is up to date")


@app.command("seed-demo")
def seed_demo() -> None:
    """Create a small demo catalog in USD, EUR and JPY (safe to run again)."""
    settings = _settings()
    from db.config import close_database, open_database
    from db.seed_demo import seed_demo_catalog

    async def run() -> int:
        await open_database(settings.database_url)
        try:
            return await seed_demo_catalog()
        finally:
            await close_database()

    typer.echo(f"demo catalog ready ({asyncio.run(run())} prices created)")


@app.command()
def token(sub: str = typer.Option(..., help="The customer id (JWT sub)."), admin: bool = False) -> None:
    """Mint a development JWT for trying the API in GraphiQL."""
    settings = _settings()
    if settings.is_production or settings.jwt_secret is None:
        typer.echo("payql token only works in development with PAYQL_JWT_SECRET set", err=True)
        raise typer.Exit(2)
    from payql.auth import mint_token

    sys.stdout.write(mint_token(settings.jwt_secret.get_secret_value(), sub, admin=admin) + "\n")
