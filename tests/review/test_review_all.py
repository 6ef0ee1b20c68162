"""`invoke review`: every stack's synth, policy, cost, diagram and report from one process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_review_writes_what_the_single_tasks_would(tmp_path, synths):
    from ops.review import diagram, report

    run = subprocess.run([sys.executable, "-m", "invoke", "review", "--stacks", "dev,prod", "--out-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for stack in ("dev", "prod"):
        document = synths[stack].to_json()
        assert json.loads((tmp_path / f"{stack}.json").read_text()) == json.loads(json.dumps(document))
        assert (tmp_path / f"{stack}-diagram.md").read_text() == f"```mermaid\n{diagram.mermaid(document)}```\n"
        assert "## Infrastructure review: `" + stack + "`" in (tmp_path / f"{stack}-report.md").read_text()
    # prod has no findings: its writes need a token the service checks (auth_enforced_by: service).
    findings = report.policy_findings(synths["prod"].to_json())
    assert {(f.policy, f.level) for f in findings} == set()
    count = sum(1 for r in synths["prod"].resources if not r["type"].startswith(("refarch:", "pulumi:")))
    assert re.search(rf"│ prod +│ +{count} │ +0 │", run.stdout), run.stdout


def test_one_failing_stack_does_not_hide_the_others(tmp_path):
    run = subprocess.run([sys.executable, "-m", "invoke", "review", "--stacks", "dev,nosuch", "--out-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert "nosuch: invalid stack config:\nstacks/Pulumi.nosuch.yaml: no such stack file" in run.stderr
    assert "error: review failed for nosuch" in run.stderr
    assert (tmp_path / "dev-report.md").is_file()
    assert "Traceback" not in run.stderr
