"""The review report: marker, headline first, mandatory policy failures first, cost delta, diagram."""

from __future__ import annotations

import copy
import re
from types import SimpleNamespace

import pytest

from ops.errors import OpsError
from ops.review import report


def small_stack(doc):
    doc.add("encryption", "aws:kms/key:Key", "key")
    doc.add("database", "aws:rds/instance:Instance", "db",
            {"engine": "postgres", "instanceClass": "db.t4g.micro", "allocatedStorage": 20, "storageType": "gp3"})
    return doc.json()


FINDINGS = [
    report.PolicyFinding("log-group-kms", "advisory", "logs", "aws:cloudwatch/logGroup:LogGroup", "no CMK"),
    report.PolicyFinding("rds-encrypted", "mandatory", "db", "aws:rds/instance:Instance", "not encrypted"),
    report.PolicyFinding("alb-tls", "advisory", None, None, "no TLS"),
    report.PolicyFinding("a-first-alphabetically", "mandatory", "key", "aws:kms/key:Key", "rotation off"),
]


@pytest.fixture
def head(doc):
    return small_stack(doc)


def render(head, usage, *, base=None, findings=FINDINGS, changes=None):
    changes = changes or report.offline_changes(head, base)
    return report.render("dev", head, usage=usage, region="us-east-1", changes=changes, findings=findings, base=base)


def test_marker_comes_first_and_headline_before_any_details(head, usage):
    text = render(head, usage)
    assert text.splitlines()[0] == "<!-- refarch-report:dev -->"
    headline = text.index("| monthly cost |")
    assert headline < text.index("<details>")
    assert "| policy | ❌ 2 mandatory, 2 advisory |" in text


def test_mandatory_failures_are_listed_first_and_not_collapsed(head, usage):
    text = render(head, usage)
    order = [m.group(1) for m in re.finditer(r"^- \*\*([a-z-]+)\*\*", text, re.M)]
    assert order == ["a-first-alphabetically", "rds-encrypted", "alb-tls", "log-group-kms"]
    mandatory = text.index("### Mandatory policy violations")
    assert mandatory < text.index("<details>") < text.index("alb-tls")


def test_cost_delta_sign_against_the_base(head, usage):
    cheaper = copy.deepcopy(head)
    next(r for r in cheaper["resources"] if r["name"] == "db")["inputs"]["instanceClass"] = "db.t4g.small"
    # head = micro, base = small: head is 730 h x (0.032 - 0.016) = $11.68 cheaper
    text = render(head, usage, base=cheaper)
    assert "-\\$11.68 vs base" in text
    without_key = copy.deepcopy(head)
    without_key["resources"] = [r for r in without_key["resources"] if r["name"] != "key"]
    # head adds the $1 KMS key the base did not have
    assert "+\\$1.00 vs base" in render(head, usage, base=without_key)


def test_offline_change_summary_and_diagram_block(head, usage):
    base = copy.deepcopy(head)
    base["resources"] = [r for r in head["resources"] if r["name"] != "key"]
    text = render(head, usage, base=base)
    assert "| changes | +1 ~0 -0 (synth comparison) |" in text
    assert re.search(r"```mermaid\nflowchart LR\n.*\n```", text, re.S)


def test_no_policy_module_means_policy_not_run_not_passed(head, usage):
    assert "| policy | not run |" in render(head, usage, findings=None)


def test_live_preview_goes_through_the_delivery_renderer(head, usage):
    events = [SimpleNamespace(resource_pre_event=SimpleNamespace(metadata=SimpleNamespace(
        op=op, urn=f"urn:pulumi:dev::refarch::aws:rds/instance:Instance::{name}", type="aws:rds/instance:Instance",
        diffs=diffs, keys=[]))) for op, name, diffs in (("update", "db", ["instanceClass"]), ("delete", "old", []))]

    class FakePulumi:
        def select(self, stack):
            assert stack == "dev"
            return self

        def preview(self, on_event):
            for event in events:
                on_event(event)

    changes = report.live_changes("dev", pulumi=FakePulumi)
    assert changes.headline == "+0 ~1 ±0 -1 (live preview)"
    text = render(head, usage, changes=changes)
    assert "### Pulumi preview: `dev`" in text and "> [!WARNING]" in text


def test_command_falls_back_offline_when_the_live_preview_is_unavailable(monkeypatch, tmp_path, dev):
    import json

    def no_cli(stack, pulumi=None):
        raise OpsError("the Pulumi CLI is not installed: https://www.pulumi.com/docs/install/")

    monkeypatch.setattr(report, "live_changes", no_cli)
    monkeypatch.setattr(report, "policy_findings", lambda document: [])
    synth_file = tmp_path / "dev.json"
    synth_file.write_text(json.dumps(dev.to_json()))
    out = tmp_path / "report.md"
    text = report.command("dev", preview=True, base=str(synth_file), md=str(out), synth_file=str(synth_file))
    assert out.read_text() == text
    assert "Live preview unavailable (the Pulumi CLI is not installed" in text
    assert "| changes | +0 ~0 -0 (synth comparison) |" in text
    assert "±\\$0.00 vs base" in text


def test_report_for_a_shipped_stack_runs_the_real_policies(dev, usage):
    findings = report.policy_findings(dev.to_json())
    if findings is None:
        pytest.skip("ops.policy_run is not in this checkout")
    text = report.render("dev", dev.to_json(), usage=usage, region="us-east-1",
                         changes=report.offline_changes(dev.to_json(), None), findings=findings)
    levels = [f.level for f in report.ordered_findings(findings)]
    assert levels == sorted(levels, key=lambda level: level != "mandatory")
    assert text.count("<!-- refarch-report:dev -->") == 1
    assert len(text.splitlines()) < 400


def test_invoke_tasks_expose_the_documented_flags():
    import importlib.util
    from pathlib import Path

    from invoke import Collection

    spec = importlib.util.spec_from_file_location("tasks", Path(__file__).resolve().parents[2] / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tasks = Collection.from_module(module)
    flags = {name: {arg.name for arg in tasks[name].get_arguments()} for name in ("cost", "diagram", "report")}
    assert flags == {"cost": {"stack", "compare", "synth", "md"}, "diagram": {"stack", "synth", "out"},
                     "report": {"stack", "preview", "base", "synth", "md"}}


def test_a_base_of_another_stack_is_refused(tmp_path, dev):
    import json

    base = tmp_path / "base.json"
    base.write_text(json.dumps({**dev.to_json(), "stack": "staging"}))
    head = tmp_path / "dev.json"
    head.write_text(json.dumps(dev.to_json()))
    with pytest.raises(OpsError, match="base synth output is of stack 'staging'"):
        report.command("dev", base=str(base), synth_file=str(head))
