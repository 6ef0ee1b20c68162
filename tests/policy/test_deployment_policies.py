"""policy/deployment_policies.py over the shipped stacks' synths and over stacks weakened one rule at a time.

Run through `ops.policy_run.evaluate`, the offline CrossGuard runner, with this module's POLICIES
(the lead wires them into the pack; until then the runner is pointed at them here).
"""

from __future__ import annotations

import copy
import importlib.util
import types
from collections.abc import Callable
from typing import Any

import pytest

from infra.config.deployment import EVALUATION_DELAY_SECONDS
from ops import policy_run
from ops.policy_run import PACK_DIR
from ops.synth import Synth


def load() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("deployment_policies", PACK_DIR / "deployment_policies.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


POLICIES = load()


def violations(synth_json: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None, str]]:
    monkeypatch.setattr(policy_run, "load_policies", lambda: POLICIES)
    return [(v.policy, v.name, v.message) for v in policy_run.evaluate(synth_json)]


def resource(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in doc["resources"] if r["name"] == name)


def test_the_timing_constant_is_the_configs():
    assert POLICIES.EVALUATION_DELAY_SECONDS == EVALUATION_DELAY_SECONDS
    assert [p.name for p in POLICIES.POLICIES] == [
        "ecs-rolls-back-by-itself", "ecs-bakes-outlast-deployment-alarms", "ecs-traffic-shift-left-to-ecs"]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_pass(synths: dict[str, Synth], stack: str, monkeypatch):
    assert violations(synths[stack].to_json(), monkeypatch) == []


def no_rollback(doc):
    resource(doc, "services-products-service")["inputs"]["alarms"]["rollback"] = False


def no_breaker(doc):
    resource(doc, "services-products-service")["inputs"]["deploymentCircuitBreaker"]["rollback"] = False


def no_wait(doc):
    resource(doc, "services-products-service")["inputs"]["waitForSteadyState"] = False


def short_canary(doc):
    resource(doc, "services-products-service")["inputs"]["deploymentConfiguration"]["canaryConfiguration"][
        "canaryBakeTimeInMinutes"] = "3"


def unknown_alarm(doc):
    resource(doc, "services-products-service")["inputs"]["alarms"]["alarmNames"].append("refarch-prod-gone")


def rule_reset(doc):
    resource(doc, "services-products-rule-0")["options"]["ignoreChanges"] = []


def pair_reset(doc):
    resource(doc, "services-products-service")["options"]["ignoreChanges"] = ["desiredCount"]


WEAKENED = [
    (no_rollback, "ecs-rolls-back-by-itself", "services-products-service", "has no deployment alarms with rollback"),
    (no_breaker, "ecs-rolls-back-by-itself", "services-products-service", "deployment_circuit_breaker"),
    (no_wait, "ecs-rolls-back-by-itself", "services-products-service", "wait_for_steady_state=True"),
    (short_canary, "ecs-bakes-outlast-deployment-alarms", "services-products-service",
     "bakes canary_bake_time_in_minutes=3 minutes, shorter than its deployment alarms need to fire (300 s)"),
    (unknown_alarm, "ecs-bakes-outlast-deployment-alarms", "services-products-service", "refarch-prod-gone"),
    (rule_reset, "ecs-traffic-shift-left-to-ecs", "services-products-rule-0",
     "Add 'actions[*].forward.targetGroups[*].weight' to its ignore_changes"),
    (pair_reset, "ecs-traffic-shift-left-to-ecs", "services-products-service",
     "Add 'loadBalancers[*].targetGroupArn', 'loadBalancers[*].advancedConfiguration.alternateTargetGroupArn'"),
]


@pytest.mark.parametrize(("change", "policy", "culprit", "says"), WEAKENED)
def test_a_weakened_prod_is_caught(synths, monkeypatch, change: Callable[[dict], None], policy, culprit, says):
    doc = copy.deepcopy(synths["prod"].to_json())
    change(doc)
    found = violations(doc, monkeypatch)
    assert [(p, n) for p, n, _ in found] == [(policy, culprit)]
    assert says in found[0][2]


def test_every_deployment_policy_has_a_weakened_case_and_is_in_the_pack():
    from tests.policy.test_policies import DEPLOYMENT_POLICIES

    names = {p.name for p in POLICIES.POLICIES}
    assert names == DEPLOYMENT_POLICIES == {policy for _, policy, _, _ in WEAKENED}
    assert names <= {p.name for p in policy_run.load_policies().POLICIES}
