"""The server functions as the wheel bundles them start a working local deployment.

The wheel carries only the files pyproject.toml force-includes; a missing one (such as
package.json, whose "type": "module" the emulator needs) breaks `pip install` users only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from convex_mastra import ConvexStore, LocalDeployment

ROOT = Path(__file__).resolve().parents[2]


async def test_the_wheels_function_files_are_enough(tmp_path: Path) -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the wheel is the same on 3.10
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    bundled = tmp_path / "site-packages"
    for source, target in include.items():
        destination = bundled / target
        if (ROOT / source).is_dir():
            shutil.copytree(
                ROOT / source, destination, ignore=shutil.ignore_patterns("node_modules")
            )
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, destination)
    functions = bundled / "convex_mastra" / "_convex"
    async with (
        LocalDeployment(functions_dir=functions) as local,
        ConvexStore(local.url, local.admin_key) as store,
    ):
        assert (await store.handler_info()).name == "convex-mastra"
        resource = await store.resources.update("packaged", working_memory="ok")
        assert resource.working_memory == "ok"
