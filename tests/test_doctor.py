"""`python -m convex_mastra doctor` against deployments in every state it diagnoses."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from convex_mastra import LocalDeployment
from convex_mastra._doctor import diagnose
from convex_mastra.pytest_plugin import Deployment


def _doctor(url: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "convex_mastra", "doctor", "--url", url, "--admin-key", key],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_healthy_local_deployment(convex_deployment: Deployment) -> None:
    result = _doctor(convex_deployment.url, convex_deployment.admin_key)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("reachable", "admin key", "storage function", "schema", "cache function"):
        assert f"[ok  ] {name}" in result.stdout
    assert "convex-mastra 0.1.0" in result.stdout
    assert convex_deployment.admin_key not in result.stdout + result.stderr


@pytest.fixture(scope="module")
def without_functions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:
    functions = tmp_path_factory.mktemp("functions")
    (functions / "hello.ts").write_text(
        'import { queryGeneric } from "convex/server";\n'
        "export const ping = queryGeneric({ args: {}, handler: async () => 'pong' });\n"
    )
    with LocalDeployment(functions_dir=functions) as local:
        yield local


def test_deployment_without_our_functions(without_functions: LocalDeployment) -> None:
    result = _doctor(without_functions.url, without_functions.admin_key)
    assert result.returncode == 1
    assert "[FAIL] storage function" in result.stdout
    assert "npx convex deploy" in result.stdout


async def test_stock_handler_is_a_warning(stock_deployment: Deployment) -> None:
    checks = {c.name: c for c in await diagnose(stock_deployment.url, stock_deployment.admin_key)}
    assert checks["storage function"].status == "warn"
    assert "public mutation" in checks["storage function"].detail
    assert checks["cache function"].status == "warn"


async def test_wrong_key_and_unreachable(convex_deployment: Deployment, tmp_path: Path) -> None:
    checks = await diagnose(convex_deployment.url, "local|wrong")
    assert [(c.name, c.status) for c in checks] == [("reachable", "ok"), ("admin key", "fail")]
    down = await diagnose("http://127.0.0.1:9", "k", timeout=3)
    assert [(c.name, c.status) for c in down] == [("reachable", "fail")]


def test_missing_configuration_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEX_URL", raising=False)
    monkeypatch.delenv("CONVEX_ADMIN_KEY", raising=False)
    result = subprocess.run(
        [sys.executable, "-m", "convex_mastra", "doctor"], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "CONVEX_URL" in result.stderr


def test_the_admin_key_is_not_sent_over_plain_http_to_a_remote_host() -> None:
    url, key = "http://192.0.2.1:3210", "prod|secret-admin-key"
    proc = subprocess.run(
        [sys.executable, "-m", "convex_mastra", "doctor", "--url", url, "--admin-key", key],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "allow_insecure_http" in proc.stderr or "--allow-insecure-http" in proc.stderr
    assert "secret-admin-key" not in proc.stderr + proc.stdout
