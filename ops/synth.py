"""Offline synth: the real program under Pulumi's mock runtime, recorded as plain JSON.

The one harness behind `invoke synth`, the tests, the policy run, the cost estimate and the
diagram. No CLI, no credentials, no network: Pulumi's mock monitor stands in for the engine.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

from infra.config import PROJECT, StackConfig

SECRET = "[secret]"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


@dataclass
class Synth:
    """What one synth produced, in the shape `invoke synth --out` writes."""

    project: str
    stack: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "stack": self.stack, "resources": self.resources, "outputs": self.outputs}

    # Conveniences for tests and reports.
    def of_type(self, type_token: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == type_token]

    def one(self, type_token: str, name: str | None = None) -> dict[str, Any]:
        found = [r for r in self.of_type(type_token) if name is None or r["name"] == name]
        if len(found) != 1:
            names = [r["name"] for r in self.of_type(type_token)]
            raise LookupError(f"expected one {type_token} named {name!r}, found {names}")
        return found[0]

    def by_urn(self, urn: str) -> dict[str, Any]:
        return next(r for r in self.resources if r["urn"] == urn)


def redact(value: Any) -> Any:
    """Replace Pulumi secret envelopes (and everything inside them) by a marker."""
    if isinstance(value, dict):
        if value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG:
            return SECRET
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire carries every number as a double
    return value


def run(config: StackConfig, stack: str, project: str = PROJECT,
        build: Callable[[StackConfig], None] | None = None) -> Synth:
    """Run the program (or `build`, a part of it) for one validated config; record every registration."""
    import pulumi
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime import rpc, settings

    from ops.mocks import AwsLikeMocks

    result = Synth(project=project, stack=stack)
    registered: list[dict[str, Any]] = []

    class RecordingMonitor(pulumi_mocks.MockMonitor):
        # Resource options never reach Mocks.new_resource (pulumi/pulumi#14421): read the request.
        def RegisterResource(self, request):  # noqa: N802 - gRPC method name
            response = super().RegisterResource(request)
            if request.type == "pulumi:pulumi:Stack" or request.type.startswith("pulumi:providers:"):
                return response
            inputs = rpc.deserialize_properties(request.object, keep_unknowns=True, keep_internal=True)
            state = self.resources[response.urn].state if response.urn in self.resources else {}
            implicit = {urn for deps in request.propertyDependencies.values() for urn in deps.urns}
            registered.append({
                "urn": response.urn,
                "type": request.type,
                "name": request.name,
                "id": (response.id or None) if request.custom else None,
                "arn": state.get("arn") if request.custom else None,
                "parent": request.parent or None,
                "inputs": redact(inputs),
                "options": {
                    "protect": bool(request.protect),
                    "retainOnDelete": bool(request.retainOnDelete),
                    "dependsOn": sorted(set(request.dependencies) - implicit),
                    "ignoreChanges": list(request.ignoreChanges),
                },
            })
            return response

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        settings.reset_options(project=project, stack=stack, preview=False)
        pulumi.runtime.set_all_config({})
        mocks = AwsLikeMocks(region=config.region)
        pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=False,
                               monitor=RecordingMonitor(mocks))

        def program_fn():
            if build is None:
                from infra.program import build as build_all
                build_all(config)
            else:
                build(config)
            root = settings.get_root_resource()
            return pulumi.Output.from_input(root.outputs).apply(_keep(result))

        pulumi.runtime.test(program_fn)()
    finally:
        settings.reset_options()
        asyncio.set_event_loop(None)
        loop.close()
    result.resources = registered
    return result


def _keep(result: Synth):
    def store(outputs: dict[str, Any]) -> None:
        result.outputs = redact(outputs)
    return store


def synth_stack(stack: str) -> Synth:
    """Validate `stacks/Pulumi.<stack>.yaml` and synth it; raises ConfigError on bad config."""
    from ops import stackfile

    return run(stackfile.load(stack), stack)
