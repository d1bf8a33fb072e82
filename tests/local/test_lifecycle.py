"""The local deployment as a process: durability across kill -9, the dev CLI, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from convex.http_client import ConvexHttpClient

from convex_mastra import LocalDeployment
from tests.conftest import RawHttp


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_kill_9_keeps_every_acknowledged_batch(tmp_path: Path) -> None:
    deployment = LocalDeployment(data_dir=tmp_path / "data")
    deployment.start()
    try:
        http = RawHttp(deployment.url, deployment.admin_key)
        acknowledged: list[int] = []
        attempted: list[int] = []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(worker: int) -> None:
            client = RawHttp(deployment.url, deployment.admin_key)
            n = 0
            while not stop.is_set():
                batch = worker * 100_000 + n
                n += 1
                records = [{"id": f"{batch}-{i}", "batch": batch} for i in range(5)]
                with lock:
                    attempted.append(batch)
                try:
                    status, body = client.post(
                        "mutation",
                        "mastra/storage:handle",
                        {"op": "batchInsert", "tableName": "crash_test", "records": records},
                    )
                except Exception:
                    return  # the server died under us: this batch was not acknowledged
                if status == 200 and body.get("status") == "success" and body["value"]["ok"]:
                    with lock:
                        acknowledged.append(batch)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < 150:
            assert time.monotonic() < deadline, f"only {len(acknowledged)} writes acknowledged"
            time.sleep(0.01)
        deployment.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

        deployment.start()
        http = RawHttp(deployment.url, deployment.admin_key)
        reply = http.storage({"op": "queryTable", "tableName": "crash_test"})
        rows: list[dict[str, Any]] = reply["result"]
        assert len(rows) < 10_000  # one queryTable call reads at most 10,000 rows
        by_batch: dict[int, int] = {}
        for row in rows:
            by_batch[row["batch"]] = by_batch.get(row["batch"], 0) + 1
        missing = [b for b in acknowledged if by_batch.get(b) != 5]
        assert missing == [], f"acknowledged batches lost after kill -9: {missing[:10]}"
        partial = {b: c for b, c in by_batch.items() if c != 5}
        assert partial == {}, f"half-written batches after kill -9: {partial}"
        print(
            f"\nkill -9: attempted {len(attempted)} batches, acknowledged {len(acknowledged)}, "
            f"found {len(by_batch)} after restart"
        )
    finally:
        deployment.stop()


def test_dev_cli_prints_a_usable_url_and_key(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "convex_mastra", "dev", "--data-dir", str(tmp_path / "dev")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline().strip()
            second = proc.stdout.readline().strip()
            assert first.startswith("CONVEX_URL=http://127.0.0.1:"), first
            assert second.startswith("CONVEX_ADMIN_KEY=")
            client = ConvexHttpClient(first.split("=", 1)[1])
            client.set_admin_auth(second.split("=", 1)[1])
            reply = client.mutation("mastra/storage:handle", {"op": "info", "tableName": "x"})
            assert reply["ok"] is True
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    deployment = LocalDeployment(data_dir=tmp_path)
    deployment.start()
    pid = deployment.pid
    assert pid is not None and _alive(pid)
    deployment.stop()
    assert _wait_dead(pid)


def test_server_exits_when_its_python_parent_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from convex_mastra import LocalDeployment
        d = LocalDeployment(data_dir={str(tmp_path)!r}).start()
        print(d.pid, flush=True)
        time.sleep(600)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        server_pid = int(parent.stdout.readline())
        assert _alive(server_pid)
        parent.kill()
        parent.wait()
    assert _wait_dead(server_pid), "the local deployment outlived its parent"


@pytest.mark.parametrize("bad", ["/nonexistent/functions"])
def test_bad_functions_dir_is_a_clear_error(tmp_path: Path, bad: str) -> None:
    from convex_mastra import LocalDeploymentError

    with pytest.raises(LocalDeploymentError, match=r"exited|functions"):
        LocalDeployment(data_dir=tmp_path, functions_dir=bad, startup_timeout=60).start()
