"""Hand-written synth outputs for the review tests: small, with inputs as pulumi_aws registers them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass
class Usage:
    """Stands in for `infra.config.UsageConfig` with round numbers that make the arithmetic readable."""

    requests_per_month: float = 10_000_000
    alb_lcu: float = 1.0
    log_gb_per_month: float = 10
    nat_gb_per_month: float = 50
    backup_gb_beyond_free: float = 0


class Doc:
    """Builds a synth JSON document: components per layer, resources parented to them."""

    def __init__(self, stack: str = "test"):
        self.stack = stack
        self.resources: list[dict[str, Any]] = []
        self.components: dict[str, str] = {}

    def _component(self, layer: str) -> str:
        if layer not in self.components:
            kind = layer.capitalize()
            urn = f"urn:pulumi:{self.stack}::refarch::refarch:{layer}:{kind}::{layer}"
            self.components[layer] = urn
            self.resources.append({"urn": urn, "type": f"refarch:{layer}:{kind}", "name": layer, "id": None,
                                   "arn": None, "parent": None, "inputs": {}, "options": _options()})
        return self.components[layer]

    def add(self, layer: str, type_: str, name: str, inputs: dict[str, Any] | None = None, *,
            id: str | None = None, arn: str | None = None, **options: Any) -> dict[str, Any]:
        parent = self._component(layer)
        resource = {
            "urn": f"urn:pulumi:{self.stack}::refarch::refarch:{layer}:{layer.capitalize()}${type_}::{name}",
            "type": type_, "name": name, "id": id or f"{name}-id", "arn": arn, "parent": parent,
            "inputs": inputs or {}, "options": {**_options(), **options},
        }
        self.resources.append(resource)
        return resource

    @staticmethod
    def arn(service: str, rest: str) -> str:
        return arn(service, rest)

    def json(self) -> dict[str, Any]:
        return {"project": "refarch", "stack": self.stack, "resources": list(self.resources), "outputs": {}}


def _options() -> dict[str, Any]:
    return {"protect": False, "retainOnDelete": False, "dependsOn": [], "ignoreChanges": []}


def arn(service: str, rest: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{rest}"


@pytest.fixture
def doc() -> Doc:
    return Doc()


@pytest.fixture
def usage() -> Usage:
    return Usage()
