"""tasks.py as Invoke loads it: a file at the repository root, not an importable package."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def collection() -> Any:
    from invoke import Collection

    spec = importlib.util.spec_from_file_location("refarch_tasks", ROOT / "tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Collection.from_module(module)
