"""Shared fixtures: one synth per shipped stack, run once per test session."""

from __future__ import annotations

import pytest

from ops import stackfile
from ops.synth import Synth, synth_stack

STACKS = ("dev", "staging", "prod")


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch):
    """No test can reach a real AWS account, whatever credentials the developer's shell holds."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


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
