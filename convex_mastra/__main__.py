"""Command line: ``dev`` runs the local dev deployment, ``doctor`` checks a deployment, ``demo``
runs a scripted agent conversation on a local deployment."""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import anyio

from ._doctor import diagnose
from ._errors import ConfigurationError, ConvexMastraError
from .local import LocalDeployment, functions_dir

DEFAULT_DATA_DIR = Path(".convex-mastra") / "dev"
DEMO_DATA_DIR = Path(".convex-mastra") / "demo"


def _functions(args: argparse.Namespace) -> int:
    source = functions_dir() / "mastra"
    target = args.convex_dir / "mastra"
    if target.exists() and not args.force:
        raise ConfigurationError(f"{target} exists; pass --force to replace it")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules"))
    print(f"copied the convex-mastra server functions to {target}")
    print("next: add `...mastraTables` from ./mastra/tables to your convex/schema.ts, then run")
    print("      `npx convex deploy` (see convex/README.md in the convex-mastra repository)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    anyio.run(run_demo, args.data_dir)
    return 0


def _dev(args: argparse.Namespace) -> int:
    deployment = LocalDeployment(
        data_dir=args.data_dir,
        functions_dir=args.functions,
        port=args.port,
        response_delay_ms=args.response_delay_ms,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with deployment:
        print(f"CONVEX_URL={deployment.url}")
        print(f"CONVEX_ADMIN_KEY={deployment.admin_key}")
        print(
            f"# local dev deployment (an emulator on convex-test); data in {deployment.data_dir}. "
            "Ctrl-C stops it.",
            flush=True,
        )
        while not stop.wait(0.5):
            if not deployment.running:
                print("convex-mastra: the local deployment exited unexpectedly", file=sys.stderr)
                return 1
    return 0


_MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def _doctor(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get("CONVEX_URL")
    key = args.admin_key or os.environ.get("CONVEX_ADMIN_KEY")
    if not url or not key:
        raise ConfigurationError(
            "doctor needs a deployment: set CONVEX_URL and CONVEX_ADMIN_KEY or pass --url and "
            "--admin-key (for a local one, run `python -m convex_mastra dev` first)"
        )
    checks = anyio.run(
        functools.partial(diagnose, url, key, allow_insecure_http=args.allow_insecure_http)
    )
    for check in checks:
        print(f"[{_MARKS[check.status]}] {check.name:<17} {check.detail}")
        if check.fix and check.status != "ok":
            print(f"       {'':<17} fix: {check.fix}")
    failed = any(check.status == "fail" for check in checks)
    print("\nThe deployment is ready." if not failed else "\nFix the FAIL lines above.")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m convex_mastra`` argument parser."""
    parser = argparse.ArgumentParser(prog="python -m convex_mastra")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run the local dev deployment in the foreground")
    dev.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    dev.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where data and the admin key live (default: {DEFAULT_DATA_DIR})",
    )
    dev.add_argument("--functions", type=Path, default=None, help="Convex functions directory")
    dev.add_argument(
        "--response-delay-ms", type=float, default=0, help="delay every response (model latency)"
    )
    dev.set_defaults(run=_dev)
    doctor = commands.add_parser("doctor", help="check a deployment and say what to fix")
    doctor.add_argument("--url", default=None, help="deployment URL (default: CONVEX_URL)")
    doctor.add_argument("--admin-key", default=None, help="admin key (default: CONVEX_ADMIN_KEY)")
    doctor.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow an http:// URL to a non-loopback host (sends the admin key unencrypted)",
    )
    doctor.set_defaults(run=_doctor)
    demo = commands.add_parser(
        "demo", help="run a scripted agent conversation on a local deployment"
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=DEMO_DATA_DIR,
        help=f"where the demo's data lives (default: {DEMO_DATA_DIR}; delete it to start over)",
    )
    demo.set_defaults(run=_demo)
    functions = commands.add_parser(
        "functions", help="copy the server functions into your Convex project's convex/ folder"
    )
    functions.add_argument("convex_dir", type=Path, help="your project's convex/ folder")
    functions.add_argument("--force", action="store_true", help="replace an existing mastra/")
    functions.set_defaults(run=_functions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m convex_mastra`` and the ``convex-mastra`` script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConvexMastraError as exc:
        print(f"convex-mastra: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
