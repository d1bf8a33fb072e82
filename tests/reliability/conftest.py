"""The reliability suite's shared machinery: figures, the secret audit, fresh deployments.

- ``results``: each scenario records its figures (operations attempted, acknowledged, found
  after restart; inputs tried; failures). At the end of the session they are written to
  ``build/reliability/results.json`` (or ``$CONVEX_MASTRA_RELIABILITY_RESULTS``), from which
  ``python -m tests.reliability.render`` regenerates the figures in docs/reliability.md.
- ``audit``: every admin key used by the suite is a secret. From the first reliability test to the
  end of the session, every log record (any logger, DEBUG and up), the text of every convex-mastra
  exception (recorded as it is constructed, then again with its cause chain when a test catches
  it) and the reprs the tests hand in are kept, and test_security checks that no secret appears in
  any of them, nor in the local deployments' server logs.
- ``SOAK``: ``CONVEX_MASTRA_SOAK=1`` runs the same tests with larger counts (see
  docs/reliability.md). The default keeps the whole suite to a few minutes in CI.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import subprocess
import sys
import time
import traceback
import weakref
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from convex_mastra import ConvexMastraError, ConvexStore, LocalDeployment
from convex_mastra.pytest_plugin import Deployment

ROOT = Path(__file__).resolve().parents[2]
RESULTS_PATH = Path(
    os.environ.get("CONVEX_MASTRA_RELIABILITY_RESULTS", ROOT / "build/reliability/results.json")
)
# Hypothesis keeps caches in ./.hypothesis by default, which pytest then refuses to collect
# (norecursedirs replaces its default ignores); build/ is ignored by git and holds no tests.
set_hypothesis_home_dir(str(ROOT / "build" / "hypothesis"))

SOAK = os.environ.get("CONVEX_MASTRA_SOAK", "") not in ("", "0")
"""Longer variants: the same tests with larger counts (``CONVEX_MASTRA_SOAK=1``)."""


def thread_record(thread_id: str, resource_id: str, at: datetime, **extra: Any) -> dict[str, Any]:
    """A thread as ``threads.save`` takes it, created and updated at ``at``."""
    return {
        "id": thread_id,
        "resource_id": resource_id,
        "created_at": at,
        "updated_at": at,
        **extra,
    }


def scaled(ci: int, soak: int) -> int:
    """``ci`` normally, ``soak`` when CONVEX_MASTRA_SOAK is set."""
    return soak if SOAK else ci


# -- figures -------------------------------------------------------------------------------


class Results:
    """Figures per scenario, plus each reliability test's outcome and duration."""

    def __init__(self) -> None:
        self.scenarios: dict[str, dict[str, Any]] = {}
        self.tests: dict[str, dict[str, Any]] = {}
        self.started: float | None = None
        self.stopped: float | None = None

    def record(self, scenario: str, **figures: Any) -> None:
        """Add (or overwrite) figures of ``scenario``."""
        self.scenarios.setdefault(scenario, {}).update(figures)

    def add(self, scenario: str, **counts: int) -> None:
        """Add ``counts`` to the figures of ``scenario`` (for tests that contribute parts)."""
        figures = self.scenarios.setdefault(scenario, {})
        for name, value in counts.items():
            figures[name] = int(figures.get(name, 0)) + value

    def report(self, report: pytest.TestReport) -> None:
        self.started = report.start if self.started is None else min(self.started, report.start)
        self.stopped = report.stop if self.stopped is None else max(self.stopped, report.stop)
        entry = self.tests.setdefault(report.nodeid, {"outcome": "passed", "seconds": 0.0})
        entry["seconds"] = round(entry["seconds"] + report.duration, 3)
        if report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"

    def write(self, exitstatus: int) -> None:
        if not self.tests:
            return
        RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": _git_commit(),
            "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
            "soak": SOAK,
            "command": " ".join(["python -m pytest", *sys.argv[1:]]) if sys.argv else "",
            "exitstatus": exitstatus,
            "wall_seconds": round((self.stopped or 0) - (self.started or 0), 1),
            "tests": self.tests,
            "scenarios": self.scenarios,
        }
        RESULTS_PATH.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


RESULTS = Results()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/reliability/" in report.nodeid:
        RESULTS.report(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    RESULTS.write(int(exitstatus))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The secret audit looks at everything the run produced, so it runs last.
    last = [item for item in items if item.name.startswith("test_no_secret_in_the_whole_run")]
    for item in last:
        items.remove(item)
        items.append(item)


@pytest.fixture(scope="session")
def results() -> Results:
    """Where scenarios record their figures for docs/reliability.md."""
    return RESULTS


# -- the secret audit ----------------------------------------------------------------------


class SecretAudit(logging.Handler):
    """Collects every text the run shows a user, to check that no admin key is among them."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.secrets: set[str] = set()
        self.log_records = 0
        self.texts: list[str] = []
        self.exceptions = 0
        self.reprs = 0
        self.server_logs: set[Path] = set()
        self._live: weakref.WeakSet[BaseException] = weakref.WeakSet()
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def add_secret(self, key: str) -> None:
        self.secrets.add(key)
        # The part after "name|" is what makes a key secret; look for it on its own too.
        if "|" in key and len(key.split("|", 1)[1]) >= 8:
            self.secrets.add(key.split("|", 1)[1])

    def add_deployment(self, local: LocalDeployment) -> None:
        self.add_secret(local.admin_key)
        self.server_logs.add(local.data_dir / "server.log")

    def emit(self, record: logging.LogRecord) -> None:
        self.log_records += 1
        try:
            text = self.format(record)
        except Exception as exc:  # a record that cannot format must not hide: keep its parts
            text = f"{record.msg!r} {record.args!r} ({exc!r})"
        self.texts.append(text)

    def constructed(self, exc: BaseException) -> None:
        """Called as every convex-mastra exception is built: its text, and itself for later."""
        self.exceptions += 1
        self.texts.append(f"{exc!s} {exc!r}")
        self._live.add(exc)

    def exception(self, exc: BaseException) -> None:
        """A caught exception: its text, repr, traceback and whole cause/context chain."""
        seen: set[int] = set()
        stack: list[BaseException] = [exc]
        while stack:
            current = stack.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            self.exceptions += 1
            self.texts.append(f"{current!s} {current!r}")
            self.texts.append("".join(traceback.format_exception(current)))
            for attr in ("args", "__notes__"):
                self.texts.append(repr(getattr(current, attr, None)))
            stack += [e for e in (current.__cause__, current.__context__) if e is not None]
            group = getattr(current, "exceptions", None)  # an ExceptionGroup (3.11+)
            if isinstance(group, tuple):
                stack += [e for e in group if isinstance(e, BaseException)]

    def repr_of(self, *objects: object) -> None:
        for obj in objects:
            self.reprs += 1
            self.texts.append(f"{obj!r} {obj!s}")

    @contextlib.contextmanager
    def raises(
        self, expected: type[BaseException] | tuple[type[BaseException], ...], match: str = ""
    ) -> Iterator[pytest.ExceptionInfo[BaseException]]:
        """``pytest.raises`` that also audits what was raised."""
        with pytest.raises(expected, match=match or None) as info:
            yield info
        self.exception(info.value)

    def leaks(self) -> list[str]:
        """Every collected text (and server log) that contains a secret, secrets masked."""
        for exc in list(self._live):  # causes are attached after construction
            self.exception(exc)
        found = [text for text in self.texts if any(s in text for s in self.secrets)]
        for path in sorted(self.server_logs):
            if path.is_file():
                content = path.read_text(errors="replace")
                self.texts.append(content)
                if any(s in content for s in self.secrets):
                    found.append(f"server log {path}")
        masked = []
        for text in found:
            for secret in self.secrets:
                text = text.replace(secret, "<SECRET>")
            masked.append(text[:500])
        return masked


AUDIT = SecretAudit()


@pytest.fixture(scope="session", autouse=True)
def audit() -> Iterator[SecretAudit]:
    """The session's secret audit; installed for the whole run from the first reliability test."""
    root = logging.getLogger()
    package = logging.getLogger("convex_mastra")
    old_level = package.level
    package.setLevel(logging.DEBUG)  # debug records (retries...) are records too
    root.addHandler(AUDIT)
    original_init = ConvexMastraError.__init__

    def recording_init(self: ConvexMastraError, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        AUDIT.constructed(self)

    ConvexMastraError.__init__ = recording_init  # type: ignore[method-assign]
    try:
        yield AUDIT
    finally:
        ConvexMastraError.__init__ = original_init  # type: ignore[method-assign]
        root.removeHandler(AUDIT)
        package.setLevel(old_level)


# -- deployments -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:
    """A fresh local deployment per test module; its data dir (and log) outlive it."""
    local = LocalDeployment(data_dir=tmp_path_factory.mktemp("deployment"))
    with local:
        AUDIT.add_deployment(local)
        yield local


@pytest.fixture
def deployed(deployment: LocalDeployment) -> Deployment:
    return Deployment(url=deployment.url, admin_key=deployment.admin_key, local=deployment)


@pytest.fixture
async def rstore(deployment: LocalDeployment) -> AsyncIterator[ConvexStore]:
    """A store on the module's deployment, audited, closed after the test."""
    async with ConvexStore(deployment.url, deployment.admin_key) as store:
        AUDIT.repr_of(store, store._transport)
        yield store
