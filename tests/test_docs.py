"""Every Python code block in README.md and docs/ runs, as a script, against a deployment.

A block is a complete program. It gets ``CONVEX_URL`` and ``CONVEX_ADMIN_KEY`` of the session
deployment, as a reader would after ``python -m convex_mastra dev``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from convex_mastra.pytest_plugin import Deployment

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.relative_to(ROOT)}:{line}", match.group(1)))
    return found


@pytest.mark.parametrize(("where", "code"), blocks(), ids=[where for where, _ in blocks()])
def test_code_block_runs(where: str, code: str, convex_deployment: Deployment) -> None:
    env = {
        **os.environ,
        "CONVEX_URL": convex_deployment.url,
        "CONVEX_ADMIN_KEY": convex_deployment.admin_key,
        "PYTHONWARNINGS": "error::ResourceWarning",
    }
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{where} failed:\n{proc.stdout}\n{proc.stderr}"
