"""Progressive delivery on ECS's own machinery, per shipped stack, from the synth of the whole program.

dev rolls (the 35 s bound), staging and prod shift traffic by canary: what each ECS service carries
(strategy, bakes, alarms with rollback, the smoke hook, the target-group pair) and what surrounds it
(alternate group, weighted rules ECS may rewrite, ECS's roles, the hook Lambda) are checked here,
together with the one property no unit test shows: once ECS has completed a deployment, the program
still declares exactly what runs, outside the paths it leaves to ECS.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

import pytest

from infra.aws.deployment import ECS_MANAGED_RULE_FIELDS, ECS_MANAGED_SERVICE_FIELDS, HOOK_SOURCE
from ops import stackfile
from ops.synth import Synth

SERVICE = "aws:ecs/service:Service"
RULE = "aws:lb/listenerRule:ListenerRule"
TG = "aws:lb/targetGroup:TargetGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LAMBDA = "aws:lambda/function:Function"


def config(stack: str):
    return stackfile.load(stack)


def service(synth: Synth, name: str = "products") -> dict[str, Any]:
    return synth.one(SERVICE, f"services-{name}-service")


def policy(synth: Synth, name: str) -> dict[str, Any]:
    return json.loads(synth.one(ROLE_POLICY, name)["inputs"]["policy"])


@pytest.fixture(params=["dev", "staging", "prod"])
def stack(request, synths) -> tuple[str, Synth]:
    return request.param, synths[request.param]


# --- every stack --------------------------------------------------------------------------------

def test_every_service_rolls_back_on_its_own_deployment_alarms_even_without_the_pipeline(stack):
    name, synth = stack
    cfg = config(name)
    registered = {a["inputs"]["name"]: a for a in synth.of_type(ALARM)}
    for svc in cfg.services:
        i = service(synth, svc.name)["inputs"]
        alarms = i["alarms"]
        assert (alarms["enable"], alarms["rollback"]) == (True, True)
        # Exactly the alarms the monitoring layer registered for this service, exported to the pipeline.
        assert alarms["alarmNames"] == synth.outputs["services"][svc.name]["deployment_alarm_names"]
        assert set(alarms["alarmNames"]) <= set(registered)
        kinds = [n.removeprefix(f"refarch-{name}-service-{svc.name}-") for n in alarms["alarmNames"]]
        tasks = "tasks-below-desired" if cfg.monitoring.container_insights else "no-healthy-hosts"
        assert kinds == ["5xx-rate", "p99-latency", "unhealthy-hosts", tasks]
        assert i["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        # `up` waits for ECS's verdict, and Ctrl-C during that wait rolls back instead of stranding it.
        assert (i["waitForSteadyState"], i["sigintRollback"]) == (True, True)


def test_every_bake_outlasts_the_alarms_that_judge_it(stack):
    name, synth = stack
    cfg = config(name).delivery.deployment
    window = 0
    for alarm in synth.of_type(ALARM):
        a = alarm["inputs"]
        if alarm["inputs"]["name"] in service(synth)["inputs"]["alarms"]["alarmNames"]:
            periods = [a["period"]] if "period" in a else [q["metric"]["period"] for q in a["metricQueries"]
                                                           if "metric" in q]
            window = max(window, a["datapointsToAlarm"] * max(periods) + 120)
    assert window == 300
    dc = service(synth)["inputs"]["deploymentConfiguration"]
    if cfg.rolling:
        assert dc == {"strategy": "ROLLING"}  # ECS bakes a rolling deployment on the alarms' own window
        return
    bakes = [int(dc["bakeTimeInMinutes"]), int(dc["canaryConfiguration"]["canaryBakeTimeInMinutes"])]
    assert all(minutes * 60 >= window for minutes in bakes), bakes


def test_dashboard_shows_the_clusters_ecs_deployments(stack):
    name, synth = stack
    group = synth.one("aws:cloudwatch/logGroup:LogGroup", "monitoring-deployment-events")
    rule = synth.one("aws:cloudwatch/eventRule:EventRule", "monitoring-deployment-events")
    pattern = json.loads(rule["inputs"]["eventPattern"])
    assert pattern == {"source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"],
                       "resources": [{"prefix": f"arn:aws:ecs:us-east-1:123456789012:service/refarch-{name}/"}]}
    target = synth.one("aws:cloudwatch/eventTarget:EventTarget")["inputs"]
    assert (target["rule"], target["arn"]) == (rule["inputs"]["name"], group["arn"])
    # EventBridge writes under the account's Logs resource policy from ci/bootstrap, which admits
    # `/aws/events/refarch-*` groups from `refarch-*` rules: the stack creates none of its own.
    assert synth.of_type("aws:cloudwatch/logResourcePolicy:LogResourcePolicy") == []
    assert group["inputs"]["name"].startswith(f"/aws/events/refarch-{name}/")
    assert rule["inputs"]["name"].startswith(f"refarch-{name}-")
    widgets = json.loads(synth.one("aws:cloudwatch/dashboard:Dashboard")["inputs"]["dashboardBody"])["widgets"]
    (log,) = [w for w in widgets if w["type"] == "log"]
    assert log["properties"]["query"].startswith(f"SOURCE '{group['inputs']['name']}' | fields @timestamp, detail.eventName")


# --- dev: rolling ---------------------------------------------------------------------------------

def test_dev_rolls_within_35_seconds_with_nothing_a_traffic_shift_needs(synths):
    dev = synths["dev"]
    (tg,) = dev.of_type(TG)
    check = tg["inputs"]["healthCheck"]
    assert check["healthyThreshold"] * check["interval"] + tg["inputs"]["deregistrationDelay"] == 35
    assert service(dev)["options"]["ignoreChanges"] == ["desiredCount"]
    assert "advancedConfiguration" not in service(dev)["inputs"]["loadBalancers"][0]
    assert [r["name"] for r in dev.of_type(RULE)] == ["services-products-rule-0"]
    assert dev.of_type(LAMBDA) == []
    assert [r for r in dev.of_type("random:index/randomPassword:RandomPassword") if "test-route" in r["name"]] == []
    assert dev.outputs["services"]["products"]["alternate_target_group_arn"] is None


# --- staging and prod: canary ---------------------------------------------------------------------

@pytest.fixture(params=["staging", "prod"])
def canary(request, synths) -> tuple[str, Synth]:
    return request.param, synths[request.param]


def test_canary_shifts_a_tenth_bakes_it_then_bakes_the_whole(canary):
    _, synth = canary
    dc = service(synth)["inputs"]["deploymentConfiguration"]
    assert dc["strategy"] == "CANARY" and dc["bakeTimeInMinutes"] == "5"
    assert dc["canaryConfiguration"] == {"canaryPercent": 10, "canaryBakeTimeInMinutes": "5"}
    assert "linearConfiguration" not in dc


def test_ecs_shifts_between_two_like_groups_on_one_weighted_production_rule(canary):
    name, synth = canary
    lb = service(synth)["inputs"]["loadBalancers"][0]
    primary = synth.one(TG, "services-products-tg")
    alternate = synth.one(TG, "services-products-tg-alt")
    production = synth.one(RULE, "services-products-rule-0")
    test = synth.one(RULE, "services-products-rule-test")
    role = synth.one(ROLE, "services-products-traffic-role")
    assert lb["targetGroupArn"] == primary["arn"]
    assert lb["advancedConfiguration"] == {
        "alternateTargetGroupArn": alternate["arn"], "productionListenerRule": production["arn"],
        "testListenerRule": test["arn"], "roleArn": role["arn"]}
    assert synth.outputs["services"]["products"]["alternate_target_group_arn"] == alternate["arn"]
    # The alternate group is the primary one under another name: health, draining, port, protocol.
    same = {k: v for k, v in primary["inputs"].items() if k not in ("name", "tags")}
    assert {k: v for k, v in alternate["inputs"].items() if k not in ("name", "tags")} == same
    assert alternate["inputs"]["name"] != primary["inputs"]["name"] and len(alternate["inputs"]["name"]) <= 32
    for rule in (production, test):
        (action,) = rule["inputs"]["actions"]
        assert action == {"type": "forward", "forward": {"targetGroups": [
            {"arn": primary["arn"], "weight": 100}, {"arn": alternate["arn"], "weight": 0}]}}
    assert production["inputs"]["conditions"] == [{"pathPattern": {"values": ["/products*"]}}]
    # The test rule is evaluated first and only for the secret header (its conditions are redacted whole).
    assert test["inputs"]["priority"] < production["inputs"]["priority"]
    assert test["inputs"]["conditions"] == "[secret]"


def test_ecs_may_touch_exactly_its_own_groups_and_rules(canary):
    _, synth = canary
    role = synth.one(ROLE, "services-products-traffic-role")
    (trust,) = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "ecs.amazonaws.com"}
    by_sid = {s["Sid"]: s for s in policy(synth, "services-products-traffic-policy")["Statement"]}
    groups = sorted(synth.one(TG, n)["arn"] for n in ("services-products-tg", "services-products-tg-alt"))
    rules = sorted(synth.one(RULE, n)["arn"] for n in ("services-products-rule-0", "services-products-rule-test"))
    assert by_sid["RegisterOwnTasks"]["Resource"] == groups
    assert by_sid["ShiftOwnRules"] == {"Sid": "ShiftOwnRules", "Effect": "Allow", "Resource": rules,
                                       "Action": "elasticloadbalancing:ModifyRule"}
    assert by_sid["ReadLoadBalancing"]["Resource"] == "*"
    assert all(a.startswith("elasticloadbalancing:Describe") for a in by_sid["ReadLoadBalancing"]["Action"])


def test_smoke_hook_runs_after_test_traffic_with_the_services_paths(canary):
    name, synth = canary
    (hook,) = service(synth)["inputs"]["deploymentConfiguration"]["lifecycleHooks"]
    function = synth.one(LAMBDA)
    invoke = synth.one(ROLE, "services-smoke-hook-invoke-role")
    assert hook["lifecycleStages"] == ["POST_TEST_TRAFFIC_SHIFT"] and hook["targetType"] == "AWS_LAMBDA"
    assert (hook["hookTargetArn"], hook["roleArn"]) == (function["arn"], invoke["arn"])
    assert json.loads(hook["hookDetails"]) == {
        "service": "products", "url": synth.outputs["gateway_url"], "paths": ["/products", "/health/ready"],
        "timeoutSeconds": 10}
    # ECS may invoke this one function and nothing else.
    (statement,) = policy(synth, "services-smoke-hook-invoke-policy")["Statement"]
    assert (statement["Action"], statement["Resource"]) == ("lambda:InvokeFunction", function["arn"])


def test_smoke_hook_is_the_repositorys_code_with_a_role_that_only_writes_its_logs(canary):
    name, synth = canary
    f = synth.one(LAMBDA)["inputs"]
    digest = hashlib.sha256(HOOK_SOURCE.read_bytes()).hexdigest()
    assert f["code"] == {"archive": {"handler.py": {"file": "functions/smoke_hook/handler.py", "sha256": digest}}}
    assert (f["handler"], f["runtime"], f["architectures"]) == ("handler.handler", "python3.13", ["arm64"])
    assert f["environment"] == "[secret]"  # the test-route values travel only as secrets
    assert "vpcConfig" not in f  # it calls the internet-facing gateway like any client
    group = synth.one("aws:cloudwatch/logGroup:LogGroup", "services-smoke-hook-logs")
    assert f["loggingConfig"]["logGroup"] == group["inputs"]["name"]
    (statement,) = policy(synth, "services-smoke-hook-logs-policy")["Statement"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == f"{group['arn']}:*"
    assert "Condition" not in statement and not synth.one(ROLE, "services-smoke-hook-role")["inputs"].get(
        "managedPolicyArns")


def test_deployment_alarms_judge_both_groups_each_on_its_own(canary):
    name, synth = canary
    alarm = {a["inputs"]["name"]: a["inputs"] for a in synth.of_type(ALARM)}[f"refarch-{name}-service-products-5xx-rate"]
    groups = {q["metric"]["dimensions"].get("TargetGroup") for q in alarm["metricQueries"] if "metric" in q} - {None}
    assert groups == {synth.one(TG, n)["arn"].split(":", 5)[-1] for n in ("services-products-tg", "services-products-tg-alt")}
    expression = next(q["expression"] for q in alarm["metricQueries"] if q["returnData"])
    assert expression.startswith("MAX([IF(FILL(req0, 0) >= 5") and "IF(FILL(req1, 0) >= 5" in expression


# --- no drift fight ---------------------------------------------------------------------------------

def _matches(path: str, pattern: str) -> bool:
    """Pulumi's ignoreChanges path syntax: `a[*].b.c[*].d` (a `[*]` matches any index)."""
    regex = re.escape(pattern).replace(r"\[\*\]", r"\[\d+\]")
    return re.fullmatch(regex + r"(\..*|\[.*)?", path) is not None


def _differences(declared: Any, live: Any, path: str = "") -> list[str]:
    if isinstance(declared, dict) and isinstance(live, dict):
        return [d for k in sorted(set(declared) | set(live))
                for d in _differences(declared.get(k), live.get(k), f"{path}.{k}" if path else k)]
    if isinstance(declared, list) and isinstance(live, list) and len(declared) == len(live):
        return [d for i, (a, b) in enumerate(zip(declared, live, strict=True)) for d in _differences(a, b, f"{path}[{i}]")]
    return [] if declared == live else [path]


def _after_a_completed_deployment(rule: dict[str, Any]) -> dict[str, Any]:
    """What a completed canary leaves behind: all traffic on the group that was the alternate."""
    live = copy.deepcopy(rule)
    for action in live["actions"]:
        for group in action["forward"]["targetGroups"]:
            group["weight"] = 100 - group["weight"]
    return live


def test_a_synth_after_ecs_completed_a_deployment_declares_no_change_to_what_ecs_manages(canary, synths):
    name, synth = canary
    for rule_name in ("services-products-rule-0",):
        rule = synth.one(RULE, rule_name)
        live = _after_a_completed_deployment(rule["inputs"])
        changed = _differences(rule["inputs"], live)
        assert changed == ["actions[0].forward.targetGroups[0].weight", "actions[0].forward.targetGroups[1].weight"]
        assert rule["options"]["ignoreChanges"] == ECS_MANAGED_RULE_FIELDS
        assert all(any(_matches(c, p) for p in rule["options"]["ignoreChanges"]) for c in changed), changed
    # ECS swaps which group the service calls primary; the service leaves that block to it.
    svc = service(synth)
    lb = copy.deepcopy(svc["inputs"]["loadBalancers"])
    lb[0]["targetGroupArn"], lb[0]["advancedConfiguration"]["alternateTargetGroupArn"] = (
        lb[0]["advancedConfiguration"]["alternateTargetGroupArn"], lb[0]["targetGroupArn"])
    changed = _differences(svc["inputs"], {**svc["inputs"], "loadBalancers": lb})
    assert changed and all(any(_matches(c, p) for p in svc["options"]["ignoreChanges"]) for c in changed)
    assert set(ECS_MANAGED_SERVICE_FIELDS) <= set(svc["options"]["ignoreChanges"])
    # The test rule is left the same way (its conditions are secret; its actions are not).
    assert synth.one(RULE, "services-products-rule-test")["options"]["ignoreChanges"] == ECS_MANAGED_RULE_FIELDS


def test_the_ignore_paths_cover_nothing_the_program_should_still_own():
    assert _matches("actions[0].forward.targetGroups[1].weight", ECS_MANAGED_RULE_FIELDS[0])
    assert not _matches("actions[0].forward.targetGroups[1].arn", ECS_MANAGED_RULE_FIELDS[0])
    assert not _matches("conditions[0].pathPattern.values[0]", ECS_MANAGED_RULE_FIELDS[0])
    assert not _matches("taskDefinition", ECS_MANAGED_SERVICE_FIELDS[0])



def _with_ignored(old: dict[str, Any], new: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    """What Pulumi sends: the new inputs, with each ignored path's old value where the old state has one."""
    result = copy.deepcopy(new)

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")
        if path and any(_matches(path, p) and not _matches(path.rsplit(".", 1)[0], p) for p in ignored):
            old_value = _lookup(old, path)
            if old_value is not _MISSING:
                _assign(result, path, old_value)

    walk(new, "")
    return result


_MISSING = object()


def _steps(path: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", path)]


def _lookup(value: Any, path: str) -> Any:
    for step in _steps(path):
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return value


def _assign(value: Any, path: str, item: Any) -> None:
    *head, last = _steps(path)
    for step in head:
        value = value[step]
    value[last] = item


def test_a_stack_switching_from_rolling_gets_its_traffic_shift_applied(synths):
    from infra.config import parse
    from ops.synth import run

    values = stackfile.read_values("prod")
    values["refarch:delivery"] = {**values["refarch:delivery"], "deployment": {"strategy": "rolling"}}
    rolling = run(parse(values, "prod", "prod as rolling"), "prod")
    canary = synths["prod"]
    old, new = service(rolling)["inputs"], service(canary)
    sent = _with_ignored(old, new["inputs"], new["options"]["ignoreChanges"])
    assert sent["loadBalancers"] == new["inputs"]["loadBalancers"]  # advancedConfiguration and all
    assert sent["deploymentConfiguration"]["strategy"] == "CANARY"
    old_rule = rolling.one(RULE, "services-products-rule-0")["inputs"]
    new_rule = canary.one(RULE, "services-products-rule-0")
    assert _with_ignored(old_rule, new_rule["inputs"], new_rule["options"]["ignoreChanges"]) == new_rule["inputs"]


def test_after_a_completed_deployment_the_next_up_sends_back_nothing_ecs_changed(canary):
    _, synth = canary
    svc = service(synth)
    live = copy.deepcopy(svc["inputs"])
    lb = live["loadBalancers"][0]
    lb["targetGroupArn"], lb["advancedConfiguration"]["alternateTargetGroupArn"] = (
        lb["advancedConfiguration"]["alternateTargetGroupArn"], lb["targetGroupArn"])
    assert _with_ignored(live, svc["inputs"], svc["options"]["ignoreChanges"]) == live
    rule = synth.one(RULE, "services-products-rule-0")
    after = _after_a_completed_deployment(rule["inputs"])
    assert _with_ignored(after, rule["inputs"], rule["options"]["ignoreChanges"]) == after
