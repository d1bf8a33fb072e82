"""``LocalDeployment``: the Convex functions of this project served on 127.0.0.1.

The process is the Node emulator in ``server/`` (convex-test behind the Convex HTTP API). It is an
emulator, not the Convex backend: see docs/local-deployment.md for what differs.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO

import anyio
import orjson

from .._errors import LocalDeploymentError
from ._runtime import find_node, functions_dir, install_runtime

__all__ = ["LocalDeployment"]

READY_PREFIX = "CONVEX_MASTRA_READY "
_ADMIN_KEY_FILE = "admin_key"
_LOG_FILE = "server.log"
_running: weakref.WeakSet[LocalDeployment] = weakref.WeakSet()


def _stop_all() -> None:
    for deployment in list(_running):
        deployment.stop()


atexit.register(_stop_all)


class LocalDeployment:
    """A local dev deployment: start it, use ``url`` and ``admin_key``, stop it.

    Use it as ``async with LocalDeployment() as dep:`` (or ``with``), or call :meth:`start` and
    :meth:`stop`. ``env`` plays the part of the deployment's environment variables (functions
    read them through ``process.env``). Data lives in ``data_dir`` (a temporary directory, removed
    on stop, when not given) and survives restarts, including ``kill -9``. The admin key is
    created once per data directory and kept there, so a restarted deployment accepts it.
    """

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        functions_dir: str | os.PathLike[str] | None = None,
        port: int = 0,
        admin_key: str | None = None,
        response_delay_ms: float = 0,
        startup_timeout: float = 120.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self._owns_data_dir = data_dir is None
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._functions_dir = Path(functions_dir) if functions_dir is not None else None
        self._port = port
        self._admin_key = admin_key
        self._explicit_key = admin_key is not None
        self._response_delay_ms = response_delay_ms
        self._startup_timeout = startup_timeout
        self._env = dict(env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._url: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = f"url={self._url!r}" if self._url else "stopped"
        return f"<LocalDeployment {state} data_dir={str(self._data_dir)!r}>"

    @property
    def url(self) -> str:
        """The deployment URL (``http://127.0.0.1:PORT``); set once started."""
        if self._url is None:
            raise LocalDeploymentError("the local deployment is not running; call start() first")
        return self._url

    @property
    def admin_key(self) -> str:
        """The admin key this deployment accepts."""
        if self._admin_key is None:
            raise LocalDeploymentError("the local deployment has no admin key until it starts")
        return self._admin_key

    @property
    def data_dir(self) -> Path:
        """Where documents, the write-ahead log and the server log live."""
        if self._data_dir is None:
            raise LocalDeploymentError("the local deployment has no data directory until it starts")
        return self._data_dir

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self.running and self._process else None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalDeployment:
        """Install the runtime if needed, start the server and wait until it answers."""
        with self._lock:
            if self.running:
                return self
            try:
                self._start_locked()
            except BaseException:
                self._forget_temporary_data()
                raise
            _running.add(self)
            return self

    def _prepare_data_dir(self) -> Path:
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="convex-mastra-"))
        # Conversation data and the admin key live here: readable by this user only.
        self._data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_file = self._data_dir / _ADMIN_KEY_FILE
        if self._admin_key is None:
            if key_file.is_file():
                self._admin_key = key_file.read_text().strip()
                if not self._admin_key:
                    raise LocalDeploymentError(
                        f"{key_file} is empty; delete it to get a new admin key"
                    )
            else:
                self._admin_key = f"local|{secrets.token_hex(32)}"
                partial = key_file.with_suffix(".tmp")
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(self._admin_key)
                os.replace(partial, key_file)  # never a half-written key file
        return self._data_dir

    def _start_locked(self) -> None:
        self._terminate(kill=True)  # a server that crashed on its own: release its log handle
        node = find_node()
        runtime_dir = install_runtime(node)
        data_dir = self._prepare_data_dir()
        functions = (self._functions_dir or functions_dir()).resolve()
        argv = [
            str(node.node),
            "--import",
            "./node_modules/tsx/dist/esm/index.mjs",
            "src/main.ts",
            "--functions",
            str(functions),
            "--data-dir",
            str(data_dir.resolve()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self._port),
            "--response-delay-ms",
            str(self._response_delay_ms),
            "--exit-on-stdin-close",
        ]
        log_path = data_dir / _LOG_FILE
        log = open(log_path, "ab")  # noqa: SIM115 - kept open for the process lifetime
        offset = log.tell()
        # The key travels in the environment, not argv, so `ps` does not show it.
        env = {**os.environ, **self._env, "CONVEX_MASTRA_ADMIN_KEY": self.admin_key}
        process = subprocess.Popen(
            argv,
            cwd=runtime_dir,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,  # Ctrl-C in a terminal goes to us; we stop it in order
        )
        self._process, self._log = process, log
        try:
            self._url = self._wait_ready(process, log_path, offset)
        except BaseException:
            self._terminate(kill=True)
            raise
        self._port = int(self._url.rsplit(":", 1)[1])

    def _wait_ready(self, process: subprocess.Popen[bytes], log_path: Path, offset: int) -> str:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            with open(log_path, "rb") as fh:
                fh.seek(offset)
                for raw in fh.read().splitlines():
                    line = raw.decode(errors="replace")
                    if line.startswith(READY_PREFIX):
                        info = orjson.loads(line[len(READY_PREFIX) :])
                        if info.get("pid") == process.pid:  # not another server's line
                            return str(info["url"])
            if process.poll() is not None:
                raise LocalDeploymentError(
                    f"the local deployment exited with code {process.returncode} before it was "
                    f"ready. Its log ({log_path}) ends with:\n{_tail(log_path, offset)}"
                )
            time.sleep(0.02)
        raise LocalDeploymentError(
            f"the local deployment was not ready within {self._startup_timeout:.0f} s; "
            f"its log ({log_path}) ends with:\n{_tail(log_path, offset)}"
        )

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and remove a temporary data dir."""
        with self._lock:
            self._terminate(kill=False)
            _running.discard(self)
            self._forget_temporary_data()

    def _forget_temporary_data(self) -> None:
        if self._owns_data_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None
            if not self._explicit_key:
                self._admin_key = None

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; the data directory is kept for :meth:`start`."""
        with self._lock:
            self._terminate(kill=True)

    def restart(self) -> LocalDeployment:
        """Stop (gracefully) and start again on the same data directory and port."""
        with self._lock:
            self._terminate(kill=False)
            self._start_locked()
            return self

    def _terminate(self, *, kill: bool) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            if kill:
                process.send_signal(signal.SIGKILL)
            else:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stdin is not None:
            process.stdin.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        self._url = None

    # -- context managers ------------------------------------------------------------------

    def __enter__(self) -> LocalDeployment:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LocalDeployment:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Shielded so that a cancelled task still stops its server instead of orphaning it.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.stop)


def _tail(path: Path, offset: int, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")[-limit:].strip() or "(empty)"
    except OSError:
        return "(no log)"
