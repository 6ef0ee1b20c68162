"""No traceback from any task, on any input: each case runs the real `invoke` process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def task_names() -> list[str]:
    listing = invoke("--list").stdout.splitlines()
    # Task lines are indented two spaces; wrapped docstrings further.
    return [match[1] for line in listing if (match := re.match(r"^  (\S+)", line))]


def test_every_task_has_help():
    names = task_names()
    assert len(names) >= 17 and "synth" in names and "review" in names
    for name in names:
        run = invoke(name, "--help")
        assert run.returncode == 0, (name, run.stderr)
        assert f"Usage: inv[oke] [--core-opts] {name}" in run.stdout


def test_a_missing_required_flag_is_named():
    run = invoke("synth")
    assert (run.returncode, run.stderr.strip()) == (1, "error: synth needs --stack (see `invoke synth --help`)")
    run = invoke("promote", "--from", "dev")
    assert (run.returncode, run.stderr.strip()) == (1, "error: promote needs --to (see `invoke promote --help`)")


def test_non_numeric_flags():
    run = invoke("releases", "--stack", "dev", "--limit", "abc")
    assert (run.returncode, run.stderr.strip()) == (1, "error: --limit expects a whole number, got 'abc'")
    run = invoke("test", "--workers", "two")
    assert (run.returncode, run.stderr.strip()) == (1, "error: --workers expects a whole number, got 'two'")


@pytest.mark.parametrize("task", ["synth", "diagram"])
def test_an_output_path_that_is_a_directory(task, tmp_path):
    run = invoke(task, "--stack", "dev", "--out", str(tmp_path))
    assert (run.returncode, run.stderr.strip()) == (1, f"error: {tmp_path}: is a directory; give a file path")


@pytest.mark.parametrize("task", ["cost", "report"])
def test_an_md_path_under_a_file(task, tmp_path):
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "report.md"
    run = invoke(task, "--stack", "dev", "--md", str(target))
    assert (run.returncode, run.stderr.strip()) == (1, f"error: {target}: {tmp_path / 'file'} is not a directory")


def test_a_missing_parent_is_created(tmp_path):
    target = tmp_path / "new" / "dir" / "dev.json"
    run = invoke("synth", "--stack", "dev", "--out", str(target))
    assert run.returncode == 0, run.stderr
    assert json.loads(target.read_text())["stack"] == "dev"


MALFORMED = {
    "not-json.json": ("{resources: ", "not valid JSON"),
    "list.json": ("[]", "not a synth output (expected an object with a `resources` list)"),
    "item.json": ('{"stack": "dev", "resources": [1]}', "resources[0]: expected an object, got int"),
    "fields.json": ('{"stack": "dev", "resources": [{"urn": "u", "type": 3, "name": "n", "inputs": {}}]}',
                    "resources[0].type: expected str, got int"),
}


@pytest.mark.parametrize("task", ["policy", "cost", "diagram", "report"])
@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_synth_files(task, name, tmp_path):
    content, message = MALFORMED[name]
    path = tmp_path / name
    path.write_text(content)
    run = invoke(task, "--stack", "dev", "--synth", str(path))
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith(f"error: {path}: {message}"), run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("task", ["policy", "cost", "diagram", "report"])
def test_a_synth_path_that_is_a_directory(task, tmp_path):
    run = invoke(task, "--stack", "dev", "--synth", str(tmp_path))
    assert (run.returncode, run.stderr.strip()) == (1, f"error: {tmp_path}: is a directory, not a synth file")


def test_policy_checks_the_file_belongs_to_the_stack(tmp_path, dev):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(dev.to_json()))
    run = invoke("policy", "--stack", "prod", "--synth", str(path))
    assert (run.returncode, run.stderr.strip()) == (1, f"error: {path}: synth output of stack 'dev', not 'prod'")


def test_policy_refuses_an_empty_graph(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"project": "refarch", "stack": "dev", "resources": [], "outputs": {}}))
    run = invoke("policy", "--stack", "dev", "--synth", str(path))
    assert (run.returncode, run.stderr.strip()) == (
        1, f"error: {path}: an empty resource graph: nothing to check (was the synth interrupted?)")


def test_report_outside_us_east_1_says_what_it_cannot_price(dev, config_of):
    from ops.review import report
    from ops.review.report import Changes

    usage = config_of("dev").usage
    text = report.render("dev", dev.to_json(), usage=usage, region="eu-west-1",
                         changes=Changes("none", "nothing", "offline"), findings=[])
    assert "| monthly cost | not priced: no price table for region 'eu-west-1'" in text
    assert "Cost section not priced: no price table for region 'eu-west-1'" in text
    assert "```mermaid" in text and "policy | ✅ no mandatory violations" in text
