"""Every code block in README.md and docs/ runs in a test, so examples cannot drift from the code.

- ```python blocks are complete programs, run as scripts.
- ```bash blocks are run by bash (``-euo pipefail``) with the virtualenv's ``bin`` first on PATH.
- The two README commands between ``<!-- test-command -->`` and ``<!-- demo-command -->``
  markers are run verbatim by ``.ci/run`` from a clean clone, so they are not run here.
- ```text, ```ts, ```json and ```toml blocks are output samples or files for other tools.

Blocks get ``CONVEX_URL`` and ``CONVEX_ADMIN_KEY`` of the session deployment, as a reader
would after ``python -m convex_mastra dev``. A block right after ``<!-- stock-handlers -->``
gets a deployment serving @mastra/convex's own handlers instead, as set up by upstream's docs.
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
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
RUN = {"python", "bash"}
SHOWN = {"text", "ts", "typescript", "json", "toml"}
CI_MARKERS = ("<!-- test-command -->", "<!-- demo-command -->")
STOCK_MARKER = "<!-- stock-handlers -->"


def blocks() -> list[tuple[str, str, str]]:
    """(where, language, code) of every fenced block; ``where`` ends in " (stock)" for blocks
    that run against the stock handlers."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            before = text[: match.start()].rstrip()
            if before.endswith(CI_MARKERS):
                continue
            where = f"{page.relative_to(ROOT)}:{line}"
            if before.endswith(STOCK_MARKER):
                where += " (stock)"
            found.append((where, match.group(1).strip(), match.group(2)))
    return found


BLOCKS = blocks()


def test_every_block_names_its_language() -> None:
    unknown = [(where, lang) for where, lang, _ in BLOCKS if lang not in RUN | SHOWN]
    assert not unknown, f"fenced blocks must say python, bash or one of {sorted(SHOWN)}: {unknown}"


@pytest.mark.parametrize(
    ("where", "lang", "code"),
    [block for block in BLOCKS if block[1] in RUN],
    ids=[where for where, lang, _ in BLOCKS if lang in RUN],
)
def test_code_block_runs(where: str, lang: str, code: str, request: pytest.FixtureRequest) -> None:
    fixture = "stock_deployment" if where.endswith(" (stock)") else "convex_deployment"
    deployment: Deployment = request.getfixturevalue(fixture)
    env = {
        **os.environ,
        "CONVEX_URL": deployment.url,
        "CONVEX_ADMIN_KEY": deployment.admin_key,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONWARNINGS": "error::ResourceWarning",
    }
    command = (
        [sys.executable, "-c", code]
        if lang == "python"
        else ["bash", "-euo", "pipefail", "-c", code]
    )
    proc = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{where} failed:\n{proc.stdout}\n{proc.stderr}"
