"""Development secrets made per installation: the JWT signing secret and the webhook secret of each gateway
package that signs its own deliveries (`GatewaySettings.development_secret_field`); an instance of such a
package ("sandbox_backup") signs with a secret derived from its package's and its own name.

Without PAYQL_JWT_SECRET (or a JWKS URL) and such a gateway's webhook secrets, development used to sign
with values published in this repository, so anyone could mint an admin token for a server left in
development. Now the first start makes random ones in `data/development-secrets.json`, created
readable by its owner only (0600) and read back on every later start, so `payql serve` and
`payql token` agree. Production never comes here: it refuses to start without its own secrets.
A file others can read, or one that does not parse, stops start-up with a message saying what to do.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from pathlib import Path

from pydantic import SecretStr

from gateways import catalog
from payql.settings import Settings, SettingsError

_JWT = "jwt_secret"


def _webhook_secret_keys() -> dict[str, str]:
    """The file's key for each gateway package that wants a development secret, by package name."""
    return {
        name: f"{name}_webhook_secret"
        for name in catalog.available()
        if catalog.package(name).settings_type.development_secret_field is not None
    }


def with_installation_secrets(settings: Settings) -> Settings:
    """`settings` with each missing development secret taken from this installation's file (made now if absent)."""
    if settings.is_production:
        return settings
    needs_jwt = settings.jwt_secret is None and settings.jwt_jwks_url is None
    needs_webhook = {
        name: field
        for name in settings.gateways
        if (field := settings.gateway(name).development_secret_field) and not getattr(settings.gateway(name), field)
    }
    if not (needs_jwt or needs_webhook):
        return settings
    kept = read_or_create(settings.development_secrets_path)
    update: dict[str, object] = {}
    if needs_jwt:
        update["jwt_secret"] = SecretStr(kept[_JWT])
    if needs_webhook:
        keys = _webhook_secret_keys()
        update["gateway_settings"] = settings.gateway_settings | {
            name: settings.gateway(name).model_copy(
                update={field: [instance_secret(kept[keys[catalog.package_of(name).name]], name)]}
            )
            for name, field in needs_webhook.items()
        }
    return settings.model_copy(update=update)


def instance_secret(package_secret: str, gateway: str) -> str:
    """The development secret of `gateway`: its package's own, or for an instance ("sandbox_backup") one
    derived from it, so each instance signs with a secret of its own that every process of the
    installation derives alike, without writing the file again."""
    package = catalog.package_of(gateway).name
    if gateway == package:
        return package_secret
    derived = hmac.new(package_secret.encode(), f"payql gateway instance {gateway}".encode(), hashlib.sha256)
    return "whsec_" + base64.urlsafe_b64encode(derived.digest()).decode().rstrip("=")


def read_or_create(path: Path) -> dict[str, str]:
    """The installation's secrets; the first process to start writes them, atomically and 0600."""
    if not path.exists():
        values = {_JWT: secrets.token_urlsafe(48)}
        values |= {key: "whsec_" + secrets.token_urlsafe(32) for key in _webhook_secret_keys().values()}
        write_private_once(path, json.dumps(values))
    return _read(path)


def write_private_once(path: Path, text: str) -> None:
    """Publish `text` at `path`, readable by its owner only, unless another process published first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the file 0600; a hard link publishes it whole, and only if no one else did first.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process published first: theirs stands
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def refuse_if_others_can_read(path: Path) -> None:
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise SettingsError(f"{path} holds this installation's secrets but others can read it: chmod 600 {path}")


def _read(path: Path) -> dict[str, str]:
    refuse_if_others_can_read(path)
    try:
        values = json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError):
        values = None
    names = (_JWT, *_webhook_secret_keys().values())
    if not (
        isinstance(values, dict)
        and all(isinstance(values.get(name), str) and len(values[name]) >= 32 for name in names)
    ):
        raise SettingsError(f"{path} is not a PayQL secrets file: delete it and PayQL makes a new one")
    return {name: values[name] for name in names}
