"""The local target's fixtures: its synth, and stack configs derived from the shipped local stack."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import parse
from ops import stackfile
from ops.synth import Synth, synth_stack


@pytest.fixture(scope="session")
def local_synth() -> Synth:
    return synth_stack("local")


@pytest.fixture(scope="session")
def dev_synth() -> Synth:
    return synth_stack("dev")


def local_values(**changes: Any) -> dict[str, object]:
    values = stackfile.read_values("local")
    for key, value in changes.items():
        values[key.replace("__", ":")] = value
    return values


def parse_local(**changes: Any):
    return parse(local_values(**changes), "local", "stacks/Pulumi.local.yaml")


def containers(synth: Synth) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in synth.of_type("docker:index/container:Container")}
