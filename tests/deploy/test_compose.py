"""No container engine runs here, so the compose stack and the image are checked as text: the file
parses, names every service an operator needs with a health check each, runs only commands the
CLI has, starts the servers after a successful migration, and the image is pinned, non-root and
without dev dependencies. tests/deploy/test_instances.py runs the same sequence as processes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from payql.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"


def services() -> dict[str, Any]:
    parsed = yaml.safe_load(COMPOSE.read_text())
    found: dict[str, Any] = parsed["services"]
    return found


def payql_commands() -> list[list[str]]:
    commands = [service["command"] for service in services().values() if "command" in service]
    commands += [
        service["healthcheck"]["test"][1:]
        for service in services().values()
        if "test" in service.get("healthcheck", {})
    ]
    docker_cmds = re.findall(r"^(?:HEALTHCHECK .*?CMD|CMD) (\[.*\])", DOCKERFILE.read_text(), re.MULTILINE)
    for raw in docker_cmds:
        words = yaml.safe_load(raw)
        if words[:2] == ["sh", "-c"]:
            commands += [shlex.split(part) for part in words[2].split("&&")]
        else:
            commands.append(words)
    return [command for command in commands if command and command[0] == "payql"]


def test_the_stack_has_every_part_with_a_health_check() -> None:
    stack = services()
    assert set(stack) == {"postgres", "redis", "migrate", "api-a", "api-b", "worker", "proxy"}
    for name, service in stack.items():
        if name != "migrate":  # a one-shot job: done is its health
            assert service["healthcheck"]["test"], name
    assert stack["worker"]["healthcheck"]["test"] == ["CMD", "payql", "worker", "--check"]
    assert stack["worker"]["environment"]["PAYQL_WORKER_METRICS_PORT"] == "9101"
    for name in ("api-a", "api-b", "worker"):
        assert stack[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert stack[name]["environment"]["PAYQL_REDIS_URL"].startswith("redis://redis:")
        assert stack[name]["environment"]["PAYQL_ENVIRONMENT"] == "production"
    assert stack["api-a"]["command"] == stack["api-b"]["command"] == ["payql", "serve"]
    proxy_address = stack["proxy"]["networks"]["payql"]["ipv4_address"]
    assert stack["api-a"]["environment"]["PAYQL_TRUSTED_PROXIES"] == proxy_address


@pytest.mark.parametrize("command", payql_commands(), ids=lambda command: " ".join(command))
def test_every_command_named_exists_in_the_cli(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_every_payql_role_is_named() -> None:
    named = {" ".join(command) for command in payql_commands()}
    assert {"payql migrate", "payql serve", "payql worker", "payql worker --check", "payql healthcheck"} <= named


def test_the_image_is_pinned_non_root_and_without_dev_dependencies() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert bases and all(re.search(r":\d+\.\d+\.\d+", base) for base in bases), bases
    syncs = re.findall(r"uv sync[^\n]*", text)
    assert syncs and all("--no-dev" in sync and "--frozen" in sync for sync in syncs)
    final_stage = text.rsplit("\nFROM ", 1)[1]
    user = re.findall(r"^USER (\S+)", final_stage, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    assert final_stage.index("USER ") < final_stage.index("CMD ")
