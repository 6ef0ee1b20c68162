"""Offline synth: the real program under Pulumi's mock runtime, recorded as plain JSON.

The one harness behind `invoke synth`, the tests, the policy run, the cost estimate and the
diagram. No CLI, no credentials, no network: Pulumi's mock monitor stands in for the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    """Replace Pulumi secret envelopes (and everything inside them) by a marker; assets become data."""
    import pulumi

    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {name: redact(item) for name, item in sorted(value.assets.items())}}
    if isinstance(value, pulumi.FileAsset):
        return {"file": _relative(str(value.path)), "sha256": _sha256(str(value.path))}
    if isinstance(value, dict):
        if value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG:
            return SECRET
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire carries every number as a double
    return value


def _relative(path: str) -> str:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return path


def _sha256(path: str) -> str:
    import hashlib

    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return "missing"


def run(config: StackConfig, stack: str, project: str = PROJECT,
        build: Callable[[StackConfig], None] | None = None, reclaim: bool = True) -> Synth:
    """Run the program (or `build`, a part of it) for one validated config; record every registration."""

    def program() -> None:
        if build is None:
            from infra.program import build as build_all

            build_all(config)
        else:
            build(config)

    return record(program, project=project, stack=stack, region=config.region, reclaim=reclaim)


def record(program: Callable[[], None], *, project: str, stack: str, region: str, reclaim: bool = True) -> Synth:
    """Run any Pulumi program function under the AWS-like mocks and record every registration.

    `reclaim=False` suits a CLI process that exits soon (see synth_runtime.shortcuts).
    """
    import pulumi
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime import rpc, settings
    from pulumi.runtime.proto import resource_pb2
    from pulumi.runtime.sync_await import _sync_await

    from ops.mocks import AwsLikeMocks
    from ops.synth_runtime import offline_loop, shortcuts

    result = Synth(project=project, stack=stack)
    registered: list[dict[str, Any]] = []

    class RecordingMonitor(pulumi_mocks.MockMonitor):
        """Registers like MockMonitor and records each request, options included.

        Resource options never reach Mocks.new_resource (pulumi/pulumi#14421), so the request
        itself is read here. The state goes back through a plain protobuf Struct: the base class
        serialises it by spinning the event loop, about 1.4 ms a resource and half of a synth's
        time; our mock state is plain data, so that work is never needed.
        """

        def RegisterResource(self, request):  # noqa: N802 - gRPC method name
            urn = self.make_urn(request.parent, request.type, request.name)
            if request.type == "pulumi:pulumi:Stack":
                return resource_pb2.RegisterResourceResponse(urn=urn)
            inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
            rid, state = self.mocks.new_resource(pulumi_mocks.MockResourceArgs(
                typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
                resource_id=request.importId, custom=request.custom or False))
            self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, rid, state)
            if not request.type.startswith("pulumi:providers:"):
                registered.append(_record(request, urn, rid, state, inputs))
            try:
                obj = _struct(state)
            except (ValueError, TypeError):  # not plain data (an asset, a reference): the slow path
                obj = _sync_await(rpc.serialize_properties(state, {}))
            return resource_pb2.RegisterResourceResponse(urn=urn, id=rid, object=obj)

    with shortcuts(reclaim) as track_settings, offline_loop():
        try:
            settings.reset_options(project=project, stack=stack, preview=False)
            pulumi.runtime.set_all_config({})
            mocks = AwsLikeMocks(region=region)
            pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=False,
                                   monitor=RecordingMonitor(mocks))
            track_settings()

            def program_fn():
                program()
                root = settings.get_root_resource()
                return pulumi.Output.from_input(root.outputs).apply(_keep(result))

            pulumi.runtime.test(program_fn)()
        finally:
            settings.reset_options()
    # Registration order depends on how outputs resolve; URN order makes two synths identical.
    result.resources = sorted(registered, key=lambda r: r["urn"])
    return result


def _record(request, urn: str, rid: str | None, state: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    implicit = {dep for deps in request.propertyDependencies.values() for dep in deps.urns}
    return {
        "urn": urn,
        "type": request.type,
        "name": request.name,
        "id": (rid or None) if request.custom else None,
        "arn": state.get("arn") if request.custom else None,
        "parent": request.parent or None,
        "inputs": redact(inputs),
        "options": {
            "protect": bool(request.protect),
            "retainOnDelete": bool(request.retainOnDelete),
            "dependsOn": sorted(set(request.dependencies) - implicit),
            # Explicit and implicit together: the order an engine creates them in.
            "dependencies": sorted(set(request.dependencies) | implicit),
            "ignoreChanges": list(request.ignoreChanges),
        },
    }


def _struct(state: dict[str, Any]):
    """Mock state as the wire Struct; plain data only (a secret stays its envelope dict)."""
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update(state)
    return struct


def _keep(result: Synth):
    def store(outputs: dict[str, Any]) -> None:
        result.outputs = redact(outputs)
    return store


def synth_stack(stack: str, reclaim: bool = True) -> Synth:
    """Validate `stacks/Pulumi.<stack>.yaml` and synth it; raises ConfigError on bad config."""
    from ops import stackfile

    return run(stackfile.load(stack), stack, reclaim=reclaim)


def layer_of(synth: Synth, resource: dict[str, Any]) -> str:
    """The architecture layer a resource belongs to: its outermost `refarch:<layer>:*` ancestor."""
    return layers_of(synth)[resource["urn"]]


def layers_of(synth: Synth) -> dict[str, str]:
    """URN -> layer for every resource, in one pass (a lookup table per call made `invoke synth` quadratic)."""
    by_urn = {r["urn"]: r for r in synth.resources}
    found: dict[str, str] = {}
    for resource in synth.resources:
        layer = "stack"
        node_: dict[str, Any] | None = resource
        while node_ is not None:
            if node_["type"].startswith(f"{PROJECT}:"):
                layer = node_["type"].split(":")[1]
            node_ = by_urn.get(node_["parent"] or "")
        found[resource["urn"]] = layer
    return found


def command(stack: str, out: str | None) -> Synth:
    """`invoke synth`: synth a stack file, print resources per layer and type, write the JSON."""
    import json
    import time
    from collections import Counter

    from rich.table import Table

    from ops.console import err, write_output
    from ops.console import out as stdout

    started = time.perf_counter()
    result = synth_stack(stack, reclaim=False)
    elapsed = time.perf_counter() - started
    layer_by_urn = layers_of(result)
    counts = Counter((layer_by_urn[r["urn"]], r["type"]) for r in result.resources if not r["type"].startswith(f"{PROJECT}:"))
    table = Table(title=f"{result.project}/{stack}: {sum(counts.values())} resources in {elapsed:.2f} s")
    table.add_column("layer")
    table.add_column("type")
    table.add_column("count", justify="right")
    for (layer, typ), n in sorted(counts.items()):
        table.add_row(layer, typ, str(n))
    console = err if out is None else stdout
    console.print(table, width=max(console.width, 110))  # type tokens are long; never truncate them
    if out:
        write_output(out, json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")
        err.print(f"wrote {out}")
    else:
        stdout.print_json(json.dumps(result.to_json(), sort_keys=True))
    return result
