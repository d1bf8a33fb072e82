"""The framework adapters are optional: the core install neither needs nor imports them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).parents[2]
FRAMEWORKS = ("openai-agents", "pydantic-ai", "pydantic-ai-slim")


def test_the_core_dependencies_name_no_framework() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {
        dep.split(">")[0].split("<")[0].split("=")[0].split(";")[0].strip().lower()
        for dep in project["dependencies"]
    }
    assert not names & set(FRAMEWORKS)
    extras = project["optional-dependencies"]
    assert extras["openai-agents"][0].startswith("openai-agents")
    assert extras["pydantic-ai"][0].startswith("pydantic-ai-slim")


def test_importing_the_sdk_imports_no_framework() -> None:
    code = (
        "import sys, convex_mastra, convex_mastra.integrations\n"
        "loaded = [m for m in ('agents', 'pydantic_ai', 'openai') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
