"""``python -m convex_mastra demo`` as a newcomer runs it: twice, on the same data directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SUMMARY = (
    "Summary",
    "messages: 200 saved, paged, updated and moved",
    "scores: 3 recorded for run-",
    "cache: 120 stream chunks replayed",
    "Demo finished.",
)


def test_demo_runs_twice_on_one_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "demo-data"
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "convex_mastra", "demo", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        for line in SUMMARY:
            assert line in proc.stdout, proc.stdout
        assert str(data) in proc.stdout  # the user is told where the data lives
        assert "in order: True" in proc.stdout
        assert "pushed over the WebSocket" in proc.stdout
    assert any(data.iterdir())
