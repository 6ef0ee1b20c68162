"""Preview: config first, steps from engine events, a PR comment with the risky changes on top."""

from __future__ import annotations

import json

import pytest

from infra.config import ConfigError
from ops import stackfile
from ops.delivery import preview
from tests.delivery.flow_fakes import RecordingStack, make_deps, step_event

EVENTS = [
    step_event("same", "aws:ec2/vpc:Vpc", "vpc"),
    step_event("update", "aws:ecs/service:Service", "products", diffs=["taskDefinition"]),
    step_event("create", "aws:ecs/taskDefinition:TaskDefinition", "products-td"),
    step_event("create-replacement", "aws:rds/instance:Instance", "db", diffs=["engineVersion"]),
    step_event("replace", "aws:rds/instance:Instance", "db", diffs=["engineVersion"]),
    step_event("delete-replaced", "aws:rds/instance:Instance", "db"),
    step_event("delete", "aws:sqs/queue:Queue", "old-queue"),
]


def test_steps_collapse_a_replacement_into_one_step():
    steps = preview.steps(EVENTS)
    assert [(s["op"], s["name"]) for s in steps] == [
        ("same", "vpc"), ("update", "products"), ("create", "products-td"), ("replace", "db"), ("delete", "old-queue")]
    assert steps[3]["diffs"] == ["engineVersion"]


def test_markdown_calls_out_replaced_and_deleted_first():
    text = preview.render_markdown("prod", preview.steps(EVENTS))
    lines = text.splitlines()
    assert lines[0] == "### Pulumi preview: `prod`"
    assert lines[2] == "**±1 to replace · -1 to delete · +1 to create · ~1 to update** · 1 unchanged"
    warning = lines.index("> [!WARNING]")
    details = next(i for i, line in enumerate(lines) if line.startswith("<details>"))
    assert warning < details
    assert "`aws:rds/instance:Instance` **db** (`engineVersion`)" in lines[warning + 2]
    assert "**old-queue**" in lines[warning + 3]
    assert "<summary>Other changes (2)</summary>" in lines[details]


def test_no_changes():
    assert "No changes (1 resources unchanged)." in preview.render_markdown("dev", preview.steps(EVENTS[:1]))


def test_long_previews_stay_short():
    many = [step_event("replace", "aws:ec2/subnet:Subnet", f"s{i}") for i in range(200)]
    many += [step_event("create", "aws:ec2/route:Route", f"r{i}") for i in range(200)]
    text = preview.render_markdown("dev", preview.steps(many))
    assert len(text.splitlines()) <= 60
    assert "… and 170 more (see the JSON)" in text


def test_run_writes_json_and_markdown(tmp_path, deps, aws_env):
    stack = RecordingStack(events=EVENTS)
    deps.pulumi = lambda: stack
    preview.run("dev", md=tmp_path / "p.md", json_out=tmp_path / "p.json", deps=deps)
    assert stack.calls == [("select", "dev"), ("preview",)]
    assert [s["op"] for s in json.loads((tmp_path / "p.json").read_text())] == [
        "same", "update", "create", "replace", "delete"]
    assert (tmp_path / "p.md").read_text().startswith("### Pulumi preview: `dev`")


def test_preview_pins_the_running_release_when_the_stack_file_does_not(deps, clients):
    """Otherwise every PR preview shows each task definition moving to the placeholder image."""
    from ops.delivery.ledger import Ledger

    running = {"products": "123456789012.dkr.ecr.us-east-1.amazonaws.com/refarch-dev/products@sha256:" + "a" * 64}
    ledger = Ledger(clients, "dev")
    release = ledger.begin("abc1234", running, "hash", "deploy")
    ledger.finish(release.id, "succeeded", verified=True)
    stack = RecordingStack(events=EVENTS)
    deps.pulumi = lambda: stack
    preview.run("dev", deps=deps)
    assert stack.calls == [("select", "dev"), ("set_images", running), ("preview",)]


def test_bad_config_stops_before_pulumi(deps, tmp_path):
    stack = RecordingStack(events=EVENTS)
    deps.pulumi = lambda: stack
    bad = tmp_path / "Pulumi.dev.yaml"
    bad.write_text("config:\n  aws:region: us-east-1\n  refarch:netwrk: {}\n")
    deps.load_config = lambda name: stackfile.load(name, bad)
    with pytest.raises(ConfigError, match="refarch:netwrk: unknown key"):
        preview.run("dev", deps=deps)
    assert stack.calls == []


@pytest.fixture
def deps():
    return make_deps()
