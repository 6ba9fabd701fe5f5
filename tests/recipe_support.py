"""What the recipe tests (tests/test_recipes.py, tests/test_recipe_*.py) share: the real CLIs
and the generators."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType

from tests.deploy_support import REPO, require_tool


def load_generator(recipe: Path) -> ModuleType:
    """A recipe's generate.py as a module, for its constants (spells, start time, ...)."""
    name = recipe.name.replace("-", "_") + "_generate"
    spec = importlib.util.spec_from_file_location(name, recipe / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def chatwatch(
    *args: str, env: Mapping[str, str] | None = None, unset: Iterable[str] = ()
) -> subprocess.CompletedProcess[str]:
    """The real `chatwatch` CLI from the repository root; `env` adds variables, `unset`
    removes them."""
    environ = {**os.environ, **(env or {})}
    for name in unset:
        environ.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environ,
        cwd=REPO,
    )


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )
