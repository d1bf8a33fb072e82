"""Command line: ``python -m convex_mastra dev`` runs the local dev deployment."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from ._errors import ConvexMastraError
from .local import LocalDeployment

DEFAULT_DATA_DIR = Path(".convex-mastra") / "dev"


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
