"""Progressive-delivery policies: ECS itself must be able to judge and roll back every deployment.

Three rules, each message ending in its remediation:
- every ECS service carries deployment alarms with rollback, the circuit breaker with rollback, and
  waits for ECS's verdict (`wait_for_steady_state`), so a bad release is rolled back by ECS even when
  the pipeline that started it is gone;
- every bake of a traffic-shifting strategy outlasts the deployment alarms it relies on (the time
  the slowest needs to fire: datapoints x period + evaluation delay), and every alarm it names exists;
- what ECS rewrites during a traffic shift (rule weights, the service's target-group pair) is left
  to it (`ignoreChanges`), so the next `up` never moves traffic back to the drained revision.

Importable without the repository's packages: the pack runs in its own virtualenv, so the one
timing constant it shares with `infra/config/deployment.py` is repeated here (a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

ECS_SERVICE = "aws:ecs/service:Service"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LISTENER_RULES = ("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")
# infra/config/deployment.py EVALUATION_DELAY_SECONDS: publication + evaluation + ECS's alarm poll.
EVALUATION_DELAY_SECONDS = 120
RULE_WEIGHTS = "actions[*].forward.targetGroups[*].weight"
# Either the whole block or exactly the pair ECS swaps.
SERVICE_TARGET_GROUPS = ("loadBalancers[*].targetGroupArn", "loadBalancers[*].advancedConfiguration.alternateTargetGroupArn")


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _items(value: Any) -> list[Any]:
    return list(value) if value is not None and not isinstance(value, (str, Mapping)) else []


def _minutes(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


# --- 1. ECS can roll back by itself -----------------------------------------------------------------

def _rolls_back_by_itself(args: ResourceValidationArgs) -> Iterator[str]:
    props = args.props
    alarms = props.get("alarms")
    if not (_get(alarms, "enable") is True and _get(alarms, "rollback") is True and _items(_get(alarms, "alarmNames"))):
        yield (f"ECS service '{args.name}' has no deployment alarms with rollback: a bad release stays up when "
               "the pipeline is gone. Set alarms={alarm_names: [...], enable: true, rollback: true}.")
    breaker = props.get("deploymentCircuitBreaker")
    if not (_get(breaker, "enable") is True and _get(breaker, "rollback") is True):
        yield (f"ECS service '{args.name}' does not roll back tasks that never become healthy. "
               "Set deployment_circuit_breaker={enable: true, rollback: true}.")
    if props.get("waitForSteadyState") is not True:
        yield (f"ECS service '{args.name}' lets `up` return before ECS's verdict, so a rollback by ECS goes "
               "unnoticed by the run. Set wait_for_steady_state=True (and sigint_rollback=True).")


def _report_service(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == ECS_SERVICE:
        for message in _rolls_back_by_itself(args):
            report(message, None)


# --- 2. bakes outlast the alarms ---------------------------------------------------------------------

def _detection_seconds(alarm: Mapping[str, Any]) -> int | None:
    periods = [_get(alarm, "period")] if alarm.get("period") is not None else [
        _get(q, "metric", "period") for q in _items(alarm.get("metricQueries")) if _get(q, "metric") is not None]
    known = [int(p) for p in periods if isinstance(p, (int, float))]
    datapoints = alarm.get("datapointsToAlarm") or alarm.get("evaluationPeriods")
    if not known or not isinstance(datapoints, (int, float)):
        return None
    return int(datapoints) * max(known) + EVALUATION_DELAY_SECONDS


def _bakes(config: Mapping[str, Any]) -> list[tuple[str, int | None]]:
    strategy = str(config.get("strategy") or "ROLLING")
    if strategy == "ROLLING":
        return []  # ECS derives a rolling deployment's bake from the alarms themselves
    bakes = [("bake_time_in_minutes", _minutes(config.get("bakeTimeInMinutes")))]
    if strategy == "CANARY":
        bakes.append(("canary_bake_time_in_minutes", _minutes(_get(config, "canaryConfiguration", "canaryBakeTimeInMinutes"))))
    if strategy == "LINEAR":
        bakes.append(("step_bake_time_in_minutes", _minutes(_get(config, "linearConfiguration", "stepBakeTimeInMinutes"))))
    return bakes


def _bakes_outlast_alarms(args: StackValidationArgs, report: ReportViolation) -> None:
    alarms: dict[str, Mapping[str, Any]] = {}
    for resource in args.resources:
        if resource.resource_type == METRIC_ALARM:
            try:
                alarms[str(resource.props.get("name"))] = resource.props
            except UnknownValueError:
                continue
    for service in (r for r in args.resources if r.resource_type == ECS_SERVICE):
        try:
            names = [str(n) for n in _items(_get(service.props.get("alarms"), "alarmNames"))]
            config = service.props.get("deploymentConfiguration") or {}
            missing = [n for n in names if n not in alarms]
            if missing:
                report(f"ECS service '{service.name}' rolls back on alarms this stack does not define: "
                       f"{', '.join(missing)}. Name the service's monitoring alarms (deployment_alarm_names).",
                       service.urn)
            windows = [w for w in (_detection_seconds(alarms[n]) for n in names if n in alarms) if w is not None]
            if not windows:
                continue
            window = max(windows)
            for field, minutes in _bakes(config):
                if minutes is None or minutes * 60 < window:
                    report(f"ECS service '{service.name}' bakes {field}={minutes} minutes, shorter than its "
                           f"deployment alarms need to fire ({window} s): a bad release would finish its "
                           f"deployment before an alarm could stop it. Raise delivery.deployment's bakes to at "
                           f"least {-(-window // 60)} minutes.", service.urn)
        except UnknownValueError:
            continue


# --- 3. what ECS manages is left to it ---------------------------------------------------------------

def _left_to_ecs(args: StackValidationArgs, report: ReportViolation) -> None:
    rules: dict[str, PolicyResource] = {}
    for resource in args.resources:
        if resource.resource_type in LISTENER_RULES:
            try:
                arn = resource.props.get("arn")
            except UnknownValueError:
                continue
            if isinstance(arn, str):
                rules[arn] = resource
    for service in (r for r in args.resources if r.resource_type == ECS_SERVICE):
        try:
            shifting = [lb for lb in _items(service.props.get("loadBalancers")) if _get(lb, "advancedConfiguration")]
            if not shifting:
                continue
            ignored = set(service.opts.ignore_changes or [])
            if "loadBalancers" not in ignored and not set(SERVICE_TARGET_GROUPS) <= ignored:
                report(f"ECS service '{service.name}' shifts traffic between two target groups but would reset "
                       f"the pair ECS swaps at every deployment. Add {', '.join(map(repr, SERVICE_TARGET_GROUPS))} "
                       f"to its ignore_changes.", service.urn)
            for lb in shifting:
                for key in ("productionListenerRule", "testListenerRule"):
                    rule = rules.get(str(_get(lb, "advancedConfiguration", key)))
                    if rule is not None and RULE_WEIGHTS not in (rule.opts.ignore_changes or []):
                        report(f"Listener rule '{rule.name}' is shifted by ECS, but the next `up` would put its "
                               f"weights back and send traffic to the drained revision. Add '{RULE_WEIGHTS}' to "
                               f"its ignore_changes.", rule.urn)
        except UnknownValueError:
            continue


POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    ResourceValidationPolicy(
        name="ecs-rolls-back-by-itself",
        description="Every ECS service has deployment alarms with rollback, the circuit breaker, and waits for ECS.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=lambda args, report: _report_service(args, report),
    ),
    StackValidationPolicy(
        name="ecs-bakes-outlast-deployment-alarms",
        description="Every bake of a traffic-shifting ECS deployment outlasts the alarms that judge it.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_bakes_outlast_alarms,
    ),
    StackValidationPolicy(
        name="ecs-traffic-shift-left-to-ecs",
        description="What ECS rewrites during a traffic shift (rule weights, target-group pair) is ignored by `up`.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_left_to_ecs,
    ),
]
