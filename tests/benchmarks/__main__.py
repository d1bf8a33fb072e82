"""Run the benchmark suite and write docs/benchmarks.md.

    python -m tests.benchmarks [--seconds 2] [--out docs/benchmarks.md]

Starts one local deployment, installs @mastra/convex for the comparison (``npm ci`` in
tests/benchmarks/node, once), runs every scenario, prints the report and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import anyio

from convex_mastra.local import find_node

from . import report, suite

ROOT = Path(__file__).parents[2]


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({model or 'unknown'}), "
        f"{memory:.0f} GiB RAM, Python {platform.python_version()}"
    )


def code_version() -> str:
    """The commit measured, and whether the working tree differed from it."""
    git = ["git", "-C", str(ROOT)]
    try:
        sha = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True)
    except OSError:
        return "an unknown commit"
    changed = len(dirty.stdout.splitlines())
    state = f" with {changed} uncommitted files" if changed else ""
    return f"commit {sha.stdout.strip()}{state}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each timed run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ns = parser.parse_args()

    load_before, code = os.getloadavg()[0], code_version()
    started = time.monotonic()
    results = anyio.run(suite.run, ns.seconds)
    elapsed = time.monotonic() - started
    command = "python -m tests.benchmarks" + "".join(f" {a}" for a in sys.argv[1:])
    text = report.markdown(
        results,
        {
            "command": command,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "runtime": f"{elapsed / 60:.1f} min",
            "machine": machine(),
            "node": f"Node {find_node().version}",
            "mastra_version": "1.5.2",
            "load": f"{load_before:.2f} / {os.getloadavg()[0]:.2f}",
            "code": code,
        },
    )
    print(text)
    ns.out.write_text(text)
    print(f"\nwritten to {ns.out}")


if __name__ == "__main__":
    main()
