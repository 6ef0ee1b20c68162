"""Shared by the schema tests: a shipped stack file with some keys replaced, and the problems it gets."""

from __future__ import annotations

import copy

from infra.config import ConfigError, parse
from ops import stackfile

SRC = "stacks/Pulumi.prod.yaml"


def problems(stack: str = "prod", **overrides) -> list[str]:
    """The refusal lines for `stack`'s file with `refarch__key=value` overrides (`__` for `:`)."""
    values = copy.deepcopy(stackfile.read_values(stack))
    for key, value in overrides.items():
        values[key.replace("__", ":")] = value
    try:
        parse(values, stack, f"stacks/Pulumi.{stack}.yaml")
    except ConfigError as exc:
        return exc.lines
    return []


def service(**fields) -> dict:
    return {"name": "api", "build": "services/products", "routes": [{"path": "/api*"}], **fields}
