"""The Pulumi adapter: what it asks the Automation API, how it reports failures and progress."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest
from pulumi import automation as auto
from pulumi.automation import OutputValue, PreviewResult, errors
from pulumi.automation._cmd import CommandResult
from rich.console import Console

from ops.delivery import pulumi_adapter
from ops.delivery.pulumi_adapter import ROOT, PulumiStack, UpProgress
from ops.errors import OpsError
from tests.delivery.flow_fakes import step_event


def real_call(name: str, *args, **kwargs) -> None:
    """Bind the call to the real `pulumi.automation.Stack.<name>` signature: a misspelt or removed
    keyword (or one pulumi renamed) fails here exactly as it would against the CLI."""
    inspect.signature(getattr(auto.Stack, name)).bind(object(), *args, **kwargs)


class AutoStack:
    """Stands in for pulumi.automation.Stack behind the adapter; every call is bound to the real signature."""

    def __init__(self, fail: Exception | None = None):
        self.calls: list[tuple] = []
        self.fail = fail

    def set_config(self, key, value, path=False):
        real_call("set_config", key, value, path=path)
        assert isinstance(value, auto.ConfigValue)
        self.calls.append(("set_config", key, value.value, value.secret, path))

    def up(self, **kwargs):
        real_call("up", **kwargs)
        self.calls.append(("up", kwargs))
        if self.fail:
            raise self.fail

    def preview(self, **kwargs):
        real_call("preview", **kwargs)
        self.calls.append(("preview", kwargs))

    def destroy(self, **kwargs):
        real_call("destroy", **kwargs)
        self.calls.append(("destroy", kwargs))

    def outputs(self):
        real_call("outputs")
        return {"gateway_url": OutputValue("https://x", False), "token": OutputValue("hunter2", True)}

    def preview_refresh(self, on_event=None):
        real_call("preview_refresh", on_event=on_event)
        on_event(step_event("refresh", "aws:ecs/service:Service", "products", done=True, diffs=["desiredCount"]))
        on_event(step_event("refresh", "aws:ec2/vpc:Vpc", "vpc", done=True))
        return PreviewResult("", "", {"same": 40, "update": 1})

    def export_stack(self):
        real_call("export_stack")

        class Deployment:
            deployment = {"resources": [
                {"urn": "urn:pulumi:dev::refarch::pulumi:pulumi:Stack::refarch-dev", "type": "pulumi:pulumi:Stack"},
                {"urn": "urn:pulumi:dev::refarch::pulumi:providers:aws::default", "type": "pulumi:providers:aws"},
                {"urn": "urn:pulumi:dev::refarch::aws:rds/instance:Instance::db", "type": "aws:rds/instance:Instance",
                 "id": "db-1", "protect": True},
            ]}
        return Deployment()


def selected(auto: AutoStack) -> PulumiStack:
    stack = PulumiStack()
    stack._stack, stack.name = auto, "dev"
    return stack


def test_set_images_sets_one_json_config_value():
    auto = AutoStack()
    selected(auto).set_images({"products": "repo@sha256:" + "1" * 64, "api": "r@sha256:" + "2" * 64})
    assert auto.calls == [("set_config", "refarch:images",
                           json.dumps({"api": "r@sha256:" + "2" * 64, "products": "repo@sha256:" + "1" * 64}),
                           False, False)]


def test_up_passes_target_urns():
    auto = AutoStack()
    selected(auto).up(target_urns=["urn:a"], on_event=print)
    # The policy pack runs on every live update, not only offline.
    assert auto.calls == [("up", {"target": ["urn:a"], "on_event": print,
                                  "policy_packs": [str(ROOT / "policy")]})]
    selected(auto).up()
    assert auto.calls[-1] == ("up", {"target": None, "on_event": None, "policy_packs": [str(ROOT / "policy")]})


def test_cli_failure_is_one_line_with_the_stderr_tail():
    failure = errors.CommandError(CommandResult("lots of stdout", "error: update failed\n  aws:ecs: boom", 255))
    with pytest.raises(OpsError) as raised:
        selected(AutoStack(fail=failure)).up()
    assert raised.value.message == "pulumi failed on stack dev: error: update failed | aws:ecs: boom"


def test_unknown_stack_says_how_to_create_it():
    failure = errors.StackNotFoundError(CommandResult("", "no stack named 'dev' found", 255))
    with pytest.raises(OpsError, match=r"stack dev does not exist .* `pulumi stack init dev`"):
        selected(AutoStack(fail=failure)).up()


def test_outputs_mask_secrets():
    assert selected(AutoStack()).outputs() == {"gateway_url": "https://x", "token": "[secret]"}


def test_resources_skip_the_stack_and_providers():
    assert selected(AutoStack()).resources() == [
        {"urn": "urn:pulumi:dev::refarch::aws:rds/instance:Instance::db", "type": "aws:rds/instance:Instance",
         "id": "db-1", "protect": True}]


def test_refresh_preview_reports_drifted_resources():
    found = selected(AutoStack()).refresh(preview_only=True)
    assert found.has_drift
    assert found.changes == {"same": 40, "update": 1}
    assert [(d["type"], d["diffs"]) for d in found.drifted] == [("aws:ecs/service:Service", ["desiredCount"])]


def test_ensure_cli_without_pulumi(monkeypatch):
    monkeypatch.setattr(pulumi_adapter.shutil, "which", lambda name: None)
    with pytest.raises(OpsError) as raised:
        PulumiStack().select("dev")
    assert raised.value.message == "the Pulumi CLI is not installed: https://www.pulumi.com/docs/install/"


def test_progress_counts_operations_line_per_step_without_a_tty():
    console = Console(record=True, force_terminal=False, width=200)
    ticks = iter([0.0, 5.0, 65.0, 65.0, 65.0])
    progress = UpProgress("up dev", console=console, clock=lambda: next(ticks))
    for event in [
        step_event("same", "aws:ec2/vpc:Vpc", "vpc"),
        step_event("update", "aws:ecs/service:Service", "products"),
        step_event("create", "aws:ecs/taskDefinition:TaskDefinition", "td"),
        step_event("create", "aws:ecs/taskDefinition:TaskDefinition", "td", done=True),
        step_event("update", "aws:ecs/service:Service", "products", done=True),
    ]:
        progress(event)
    progress.close()
    lines = console.export_text().splitlines()
    assert lines == [
        "[0:05] 1/2 created  aws:ecs/taskDefinition:TaskDefinition td",
        "[1:05] 2/2 updated  aws:ecs/service:Service products",
        "[1:05] up dev: 2/2 done (created 1, updated 1, replaced 0, deleted 0)",
    ]


def test_a_misspelt_keyword_is_caught_by_the_real_signature():
    with pytest.raises(TypeError, match="policy_pack"):
        real_call("up", policy_pack=["policy"])  # the real keyword is policy_packs


def test_preview_and_destroy_calls_bind_to_the_real_signatures():
    stack = AutoStack()
    selected(stack).preview(on_event=print)
    selected(stack).destroy()
    assert [c[0] for c in stack.calls] == ["preview", "destroy"]


def test_every_automation_call_in_the_adapter_exists_with_those_keywords():
    """Read the adapter's source: each `auto.X(...)` and each call on the selected stack must bind
    to the real pulumi.automation signature (the names are checked, the values cannot be)."""
    tree = ast.parse(Path(pulumi_adapter.__file__).read_text())
    checked = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        target, name = node.func.value, node.func.attr
        kwargs = {k.arg: None for k in node.keywords if k.arg}
        args = [None] * len(node.args)
        if isinstance(target, ast.Name) and target.id == "auto":
            inspect.signature(getattr(auto, name)).bind(*args, **kwargs)
        elif (isinstance(target, ast.Call) and isinstance(target.func, ast.Attribute)
              and target.func.attr == "_selected") or (isinstance(target, ast.Name) and target.id == "stack"):
            inspect.signature(getattr(auto.Stack, name)).bind(object(), *args, **kwargs)
        else:
            continue
        checked.append(name)
    assert {"select_stack", "create_or_select_stack", "ConfigValue", "set_config", "preview", "up", "refresh", "preview_refresh",
            "destroy", "outputs", "export_stack"} <= set(checked)
