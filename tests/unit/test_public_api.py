"""The public surface is what docs/api.md lists: no more, no less, every entry documented.

Needs no deployment and no Node: it reads the package and the page.
"""

from __future__ import annotations

import re
import types
from pathlib import Path

import convex_mastra

API_PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def documented_names() -> set[str]:
    """The backticked names in the first column of docs/api.md's table."""
    names: set[str] = set()
    for line in API_PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            first_column = line.split("|")[1]
            names.update(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", first_column))
    return names


def test_all_is_exactly_the_documented_api() -> None:
    exported = set(convex_mastra.__all__)
    assert len(exported) == len(convex_mastra.__all__), "__all__ lists a name twice"
    assert exported == documented_names(), (
        f"undocumented: {sorted(exported - documented_names())}; "
        f"documented but not exported: {sorted(documented_names() - exported)}"
    )


def test_every_exported_name_exists_and_is_documented_in_code() -> None:
    for name in convex_mastra.__all__:
        value = getattr(convex_mastra, name)
        if name == "__version__":
            assert isinstance(value, str) and re.fullmatch(r"\d+\.\d+\.\d+\S*", value)
            continue
        assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_nothing_public_hides_outside_all() -> None:
    # A public-looking attribute of the package that is not in __all__ is a leak. Submodules
    # (`local`, `pytest_plugin`) are entry points of their own, documented on their pages.
    public = {
        name
        for name, value in vars(convex_mastra).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public <= set(convex_mastra.__all__), sorted(public - set(convex_mastra.__all__))


def test_the_integration_modules_export_what_api_md_names() -> None:
    import importlib

    page = API_PAGE.read_text(encoding="utf-8")
    for module_name in ("openai_agents", "pydantic_ai"):
        module = importlib.import_module(f"convex_mastra.integrations.{module_name}")
        line = next(line for line in page.splitlines() if f"integrations.{module_name}`" in line)
        paragraph = page[page.index(line) :].split("\n- ")[0]
        for name in module.__all__:
            assert f"`{name}`" in paragraph, f"{module_name}.{name} is not in docs/api.md"
            value = getattr(module, name)
            if not isinstance(value, str):
                assert (value.__doc__ or "").strip(), f"{module_name}.{name} has no docstring"
