"""Development secrets made per installation: the JWT signing secret and the sandbox webhook secret.

Without PAYQL_JWT_SECRET (or a JWKS URL) and PAYQL_SANDBOX_WEBHOOK_SECRETS, development used to sign
with values published in this repository, so anyone could mint an admin token for a server left in
development. Now the first start makes random ones in `data/development-secrets.json`, created
readable by its owner only (0600) and read back on every later start, so `payql serve` and
`payql token` agree. Production never comes here: it refuses to start without its own secrets.
A file others can read, or one that does not parse, stops start-up with a message saying what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import tempfile
from pathlib import Path

from pydantic import SecretStr

from payql.settings import Settings, SettingsError

_JWT = "jwt_secret"
_SANDBOX_WEBHOOK = "sandbox_webhook_secret"


def with_installation_secrets(settings: Settings) -> Settings:
    """`settings` with each missing development secret taken from this installation's file (made now if absent)."""
    if settings.is_production:
        return settings
    needs_jwt = settings.jwt_secret is None and settings.jwt_jwks_url is None
    needs_webhook = "sandbox" in settings.gateways and not settings.sandbox_webhook_secrets
    if not (needs_jwt or needs_webhook):
        return settings
    kept = read_or_create(settings.development_secrets_path)
    update: dict[str, object] = {}
    if needs_jwt:
        update["jwt_secret"] = SecretStr(kept[_JWT])
    if needs_webhook:
        update["sandbox_webhook_secrets"] = [kept[_SANDBOX_WEBHOOK]]
    return settings.model_copy(update=update)


def read_or_create(path: Path) -> dict[str, str]:
    """The installation's secrets; the first process to start writes them, atomically and 0600."""
    if not path.exists():
        values = {_JWT: secrets.token_urlsafe(48), _SANDBOX_WEBHOOK: "whsec_" + secrets.token_urlsafe(32)}
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
    if not (
        isinstance(values, dict)
        and all(isinstance(values.get(name), str) and len(values[name]) >= 32 for name in (_JWT, _SANDBOX_WEBHOOK))
    ):
        raise SettingsError(f"{path} is not a PayQL secrets file: delete it and PayQL makes a new one")
    return {name: values[name] for name in (_JWT, _SANDBOX_WEBHOOK)}
