"""Offline CrossGuard: the pack's own policy objects run over the synth JSON, no CLI, no engine.

`evaluate` is what `invoke policy` and the review report (issue 5) call. It hands each policy
what the engine would: resource policies get a resource's inputs, stack policies get every
resource with its inputs plus `id` and `arn` (the outputs that other resources reference).
Props go through pulumi_policy's own read-only proxies so a check that only works on plain
dicts fails here as it would under `pulumi preview`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

PACK_DIR = Path(__file__).resolve().parent.parent / "policy"
MODULE = "refarch_policies"

Level = Literal["mandatory", "advisory"]


@dataclass
class Violation:
    policy: str
    level: Level
    urn: str | None
    resource_type: str | None
    name: str | None
    message: str


def load_policies() -> ModuleType:
    """`policy/refarch_policies.py` by file path: the folder is the pack, not a package."""
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    spec = importlib.util.spec_from_file_location(MODULE, PACK_DIR / f"{MODULE}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    spec.loader.exec_module(module)
    return module


def evaluate(synth_json: dict[str, Any]) -> list[Violation]:
    """Every violation of every enabled policy, mandatory first, then by resource and policy."""
    from pulumi_policy import (
        EnforcementLevel,
        PolicyCustomTimeouts,
        PolicyResource,
        PolicyResourceOptions,
        ResourceValidationArgs,
        ResourceValidationPolicy,
        StackValidationArgs,
    )
    from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

    policies = load_policies().POLICIES
    resources = [r for r in synth_json.get("resources", []) if not r["type"].startswith("pulumi:")]
    by_urn = {r["urn"]: r for r in resources}

    def options(resource: dict[str, Any]) -> PolicyResourceOptions:
        opts = resource.get("options") or {}
        return PolicyResourceOptions(
            protect=bool(opts.get("protect")), ignore_changes=list(opts.get("ignoreChanges") or []),
            delete_before_replace=None, aliases=[], custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
            additional_secret_outputs=[], parent=resource.get("parent"),
        )

    # Stack view: inputs plus the computed references (the engine hands stack policies outputs).
    stack_resources: dict[str, PolicyResource] = {}
    for r in resources:
        outputs = {**r.get("inputs", {}), **{k: r[k] for k in ("id", "arn") if r.get(k) is not None}}
        stack_resources[r["urn"]] = PolicyResource(
            resource_type=r["type"], props=unknown_checking_proxy(outputs), urn=r["urn"], name=r["name"],
            opts=options(r), provider=None, parent=None, dependencies=[], property_dependencies={},
        )
    for r in resources:
        node = stack_resources[r["urn"]]
        node.parent = stack_resources.get(r.get("parent") or "")
        node.dependencies = [stack_resources[u] for u in (r.get("options") or {}).get("dependsOn", [])
                             if u in stack_resources]

    found: list[Violation] = []
    for policy in policies:
        maybe_level = _level(policy.enforcement_level, EnforcementLevel)
        if maybe_level is None:
            continue
        level: Level = maybe_level

        def report(message: str, urn: str | None = None, *, _policy: Any = policy, _level: Level = level,
                   _default: dict[str, Any] | None = None) -> None:
            resource = by_urn.get(urn or "") or _default
            found.append(Violation(
                policy=_policy.name, level=_level, urn=resource["urn"] if resource else urn,
                resource_type=resource["type"] if resource else None,
                name=resource["name"] if resource else None, message=message,
            ))

        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                resource_args = ResourceValidationArgs(
                    resource_type=r["type"], props=unknown_checking_proxy(dict(r.get("inputs", {}))),
                    urn=r["urn"], name=r["name"], opts=options(r), provider=None,
                )
                # The engine attributes a resource policy's violation to that resource, whatever urn is passed.
                _run(policy.validate, resource_args, lambda m, u=None, _r=r: report(m, _r["urn"], _default=_r),
                     UnknownValueError)
        else:
            stack_args = StackValidationArgs(resources=list(stack_resources.values()))
            _run(policy.validate, stack_args, report, UnknownValueError)

    rank = {"mandatory": 0, "advisory": 1}
    return sorted(found, key=lambda v: (rank[v.level], v.urn or "", v.policy, v.message))


def _level(enforcement: Any, levels: Any) -> Level | None:
    if enforcement == levels.DISABLED:
        return None
    return "mandatory" if enforcement == levels.MANDATORY else "advisory"


def _run(validate: Any, args: Any, report: Any, unknown: type[Exception]) -> None:
    # Validations may be async (they return an awaitable); an unknown value means "cannot tell yet".
    try:
        result = validate(args, report)
        if inspect.isawaitable(result):
            asyncio.run(_awaited(result))
    except unknown:
        return


async def _awaited(awaitable: Any) -> None:
    await awaitable


def command(stack: str, synth_file: str | None = None) -> list[Violation]:
    """`invoke policy`: synth (or read) the stack, print violations by resource, fail on mandatory ones."""

    from rich.markup import escape

    from ops.console import err, out
    from ops.errors import OpsError

    if synth_file:
        from ops.review import read_stack_synth

        synth_json = read_stack_synth(synth_file, stack)
    else:
        from ops.synth import synth_stack

        synth_json = synth_stack(stack, reclaim=False).to_json()

    violations = evaluate(synth_json)
    mandatory = [v for v in violations if v.level == "mandatory"]
    count = len(load_policies().POLICIES)
    if not violations:
        out.print(f"[green]{stack}: all {count} policies pass[/green]")
        return violations

    out.print(f"{stack}: {len(mandatory)} mandatory, {len(violations) - len(mandatory)} advisory "
              f"violation(s) of {count} policies")
    # Grouped by resource; resources with a mandatory violation first (the list is sorted so).
    groups: dict[str, list[Violation]] = {}
    for v in violations:
        groups.setdefault(v.urn or "(stack)", []).append(v)
    for urn, items in groups.items():
        first = items[0]
        out.print(f"\n[bold]{escape(first.name or urn)}[/bold] [dim]{escape(first.resource_type or '')}[/dim]")
        for v in items:
            style = "bold red" if v.level == "mandatory" else "yellow"
            out.print(f"  [{style}]{v.level:<9}[/{style}] {v.policy}: {escape(v.message)}")
    if mandatory:
        raise OpsError(f"{stack}: {len(mandatory)} mandatory policy violation(s)", code=1)
    err.print(f"{stack}: no mandatory violations")
    return violations
