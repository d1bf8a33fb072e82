"""The pytest plugin as a user meets it: the files from docs/testing.md, run by pytest itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
FILE_BLOCK = re.compile(r"^```python\n# file: (\S+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def documented_files() -> dict[str, str]:
    return {name: code for name, code in FILE_BLOCK.findall(DOC.read_text(encoding="utf-8"))}


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # The plugin must start local deployments here, not use the outer run's settings.
    monkeypatch.delenv("CONVEX_URL", raising=False)
    monkeypatch.delenv("CONVEX_ADMIN_KEY", raising=False)
    files = documented_files()
    assert set(files) == {"conftest.py", "test_support_bot.py"}
    pytester.makeconftest(files["conftest.py"])
    pytester.makepyfile(test_support_bot=files["test_support_bot.py"])
    # A second module, run last: with module isolation it starts with an empty deployment.
    pytester.makepyfile(
        test_z_other_module="""
async def test_sees_no_thread_from_the_other_module(convex_store):
    assert (await convex_store.threads.list(resource_id="user-1")).total == 0
"""
    )
    pytester.makeini("[pytest]\nasyncio_mode = auto\nconvex_isolation = module\n")
    return pytester


def test_documented_suite_passes_with_module_isolation(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_session_isolation_shares_one_deployment(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--convex-isolation=session")
    # The other module now sees the thread the documented test saved.
    result.assert_outcomes(passed=2, failed=1)


def test_test_isolation_starts_each_test_empty(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--convex-isolation=test")
    # The documented second test relies on the first one's data within its module.
    result.assert_outcomes(passed=2, failed=1)
