"""Shared fixtures: one synth per shipped stack, run once per test session."""

from __future__ import annotations

import pytest

from ops import stackfile
from ops.synth import Synth, synth_stack

STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def synths() -> dict[str, Synth]:
    return {stack: synth_stack(stack) for stack in STACKS}


@pytest.fixture(scope="session")
def dev(synths) -> Synth:
    return synths["dev"]


@pytest.fixture(scope="session")
def prod(synths) -> Synth:
    return synths["prod"]


@pytest.fixture
def config_of():
    """A stack's typed config, optionally with keys overridden: config_of("dev", database={...})."""
    from infra.config import parse

    def make(stack: str, **overrides):
        values = stackfile.read_values(stack)
        for key, value in overrides.items():
            values[f"refarch:{key}"] = value
        return parse(values, stack, f"stacks/Pulumi.{stack}.yaml")

    return make
