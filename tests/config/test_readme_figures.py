"""The README's figures are what the commands print: resource counts, costs, the test count."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ops.review import cost

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def row(label: str) -> str:
    (line,) = [line for line in README.splitlines() if line.startswith(f"| {label}")]
    return line


def counted(synth) -> int:
    # What `invoke synth` counts in its title line: cloud resources, not components.
    return sum(1 for r in synth.resources if not r["type"].startswith(("refarch:", "pulumi:")))


def test_resource_counts(synths):
    found = re.search(r"dev (\d+), staging (\d+), prod (\d+)", row("resources per stack"))
    assert found, row("resources per stack")
    assert [int(n) for n in found.groups()] == [counted(synths[s]) for s in ("dev", "staging", "prod")]


def test_monthly_costs(synths, config_of):
    def monthly(stack: str, **kwargs) -> str:
        config = config_of(stack)
        return cost.money(cost.estimate(synths[stack].to_json(), config.usage, config.region, **kwargs).total)

    dev = row("dev stack, monthly")
    assert f"| {monthly('dev', cloudwatch_free_tier=False)}; {monthly('dev')} with CloudWatch" in dev
    assert f"| {monthly('staging')} / {monthly('prod')} |" in row("staging / prod, monthly")


def test_the_test_count(request):
    if request.config.args_source != pytest.Config.ArgsSource.TESTPATHS or request.config.getoption("keyword"):
        pytest.skip("only a run of the whole suite knows the test count")
    figure = int(re.search(r"about (\d+) tests", row("test suite"))[1])
    collected = len(request.session.items)
    assert abs(collected - figure) <= figure * 0.1, f"README says about {figure} tests, {collected} collected"


def test_times_name_their_benchmark():
    assert "`bench/synth_bench.py`" in row("whole `invoke synth")


def test_the_policy_count():
    from ops.policy_run import load_policies

    policies = load_policies().POLICIES
    mandatory = sum(1 for p in policies if p.enforcement_level.name == "MANDATORY")
    assert f"({len(policies)} policies: {mandatory} mandatory, {len(policies) - mandatory} advisory," in README
