"""Post-deploy verification: is the new release what ECS runs, did ECS keep it, is it serving?

Five stages, each a list of checks reported live through `on_check` as they complete:
1. every ECS service stable (one deployment, running == desired), through boto3's
   `services_stable` waiter with a bounded wait;
2. ECS's own outcome: the service's newest deployment finished SUCCESSFUL (a rollback by ECS, for
   an alarm, the circuit breaker, a failed smoke hook or Ctrl-C, fails the release and names why)
   and the service's primary deployment runs the task definition this release registered;
3. every target of each service's target groups healthy (both groups of a traffic-shifting
   strategy, between which ECS alternates), through the `TargetHealth` seam;
4. an HTTP GET of each service's smoke path through the gateway URL answers < 400;
5. the deployment judged by its own alarms over its own window: an alarm that went into ALARM
   after the deployment started fails it; one already in ALARM before does not (a hotfix must be
   able to ship while the alarm it fixes still fires). ECS watches those alarms through its own
   bake; only when it did not (an alarm was already firing at the start, so ECS ignored them all)
   does the pipeline bake itself for `bake_seconds`; where it did, the pipeline only watches out
   what is left of the alarms' window since the deployment began.

A failed stage ends verification: later stages would only delay the rollback it triggers.
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from infra.config import ServiceConfig
from infra.config.deployment import ALARM_WINDOW_SECONDS
from ops.delivery.aws import CREDENTIAL_CODES, Clients, error_code, translate_errors
from ops.delivery.deployments import WATCHED, DeploymentOutcome, EcsServiceDeployments, ServiceDeployments

_DESCRIBE_ALARMS_MAX = 100


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    # Services ECS did not keep on this release (rolled back, stopped, or running another task
    # definition), with why: such a release failed, whatever the later checks would say.
    rolled_back: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks) and not self.rolled_back

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def summary(self) -> str:
        if self.ok:
            return f"verified: {len(self.checks)} checks passed"
        return "verification failed: " + "; ".join(f"{c.name}: {c.detail}" for c in self.failures)


@dataclass(frozen=True)
class TargetState:
    id: str
    port: int | None
    state: str  # initial | healthy | unhealthy | unused | draining | unavailable
    reason: str = ""


class TargetHealth(Protocol):
    """Where target health comes from: the ELB API in production, a stand-in in tests."""

    def describe(self, target_group_arn: str) -> list[TargetState]: ...


class ElbTargetHealth:
    def __init__(self, clients: Clients):
        self.aws = clients

    def describe(self, target_group_arn: str) -> list[TargetState]:
        found = self.aws.elbv2.describe_target_health(TargetGroupArn=target_group_arn)
        return [
            TargetState(
                id=str(item["Target"]["Id"]),
                port=item["Target"].get("Port"),
                state=item["TargetHealth"]["State"],
                reason=" ".join(filter(None, (item["TargetHealth"].get("Reason"),
                                              item["TargetHealth"].get("Description")))),
            )
            for item in found.get("TargetHealthDescriptions", [])
        ]


def _ignore(_: Check) -> None:
    return None


def verify(clients: Clients, outputs: dict[str, Any], *, bake_seconds: int, smoke_timeout: float,
           services: list[ServiceConfig], on_check: Callable[[Check], None] = _ignore,
           target_health: TargetHealth | None = None, deployments: ServiceDeployments | None = None,
           sleep: Callable[[float], None] = time.sleep, poll_seconds: float = 10, stable_timeout: float = 900,
           health_timeout: float = 300) -> Report:
    """Run the checks against a deployed stack's outputs; never raises for an unhealthy stack.

    `sleep` paces the outcome, target-health and alarm polls (the bake window is measured in the
    time it sleeps); the ECS waiter sleeps on its own, `poll_seconds` apart, for at most
    `stable_timeout`. `poll_seconds=0` (tests) polls each thing once more after a single sleep of
    its whole window.
    """
    if poll_seconds < 0:
        raise ValueError("poll_seconds must be >= 0")
    report = Report()
    started = datetime.now(UTC)
    outcomes: dict[str, DeploymentOutcome | None] = {}

    def record(check: Check) -> Check:
        report.checks.append(check)
        on_check(check)
        return check

    deployed = outputs.get("services") or {}
    cluster = outputs.get("cluster_name", "")
    stages: Sequence[Callable[[], list[Check]]] = (
        lambda: _stable(clients, cluster, services, deployed, record, poll_seconds, stable_timeout),
        lambda: _outcomes(clients, deployments or EcsServiceDeployments(clients), cluster, services, deployed,
                          record, report, outcomes, sleep, poll_seconds, stable_timeout),
        lambda: _targets(target_health or ElbTargetHealth(clients), services, deployed, record,
                         sleep, poll_seconds, health_timeout),
        lambda: _smoke(str(outputs.get("gateway_url", "")), services, record, smoke_timeout),
        lambda: [_alarms(clients, _alarm_names(outputs, services), outcomes, started, record, sleep,
                         poll_seconds, bake_seconds)],
    )
    with translate_errors("verifying the deployment"):
        for stage in stages:
            if not all(check.ok for check in stage()):
                break
    return report


# -- 1. ECS ----------------------------------------------------------------------------------------

def _stable(clients: Clients, cluster: str, services: list[ServiceConfig], deployed: dict[str, Any],
            record: Callable[[Check], Check], poll_seconds: float, timeout: float) -> list[Check]:
    from botocore.exceptions import WaiterError

    checks = []
    deadline = time.monotonic() + timeout
    for svc in services:
        name = f"ecs stable: {svc.name}"
        service_name = (deployed.get(svc.name) or {}).get("service_name")
        if not service_name:
            checks.append(record(Check(name, False, "not in the stack outputs")))
            continue
        remaining = max(deadline - time.monotonic(), poll_seconds)
        attempts = max(1, math.ceil(remaining / poll_seconds)) if poll_seconds > 0 else 1
        started = time.monotonic()
        try:
            clients.ecs.get_waiter("services_stable").wait(
                cluster=cluster, services=[service_name],
                WaiterConfig={"Delay": poll_seconds, "MaxAttempts": attempts},
            )
        except WaiterError as exc:
            detail = _unstable_detail(exc.last_response, service_name)
            waited = time.monotonic() - started
            checks.append(record(Check(name, False, f"{service_name} not stable after {waited:.0f}s: {detail}")))
            continue
        except Exception as exc:
            checks.append(record(_api_failure(name, exc)))
            continue
        checks.append(record(Check(name, True, f"{service_name}: one deployment, running == desired")))
    return checks


def _unstable_detail(response: dict[str, Any] | None, service_name: str) -> str:
    response = response or {}
    failures = response.get("failures") or []
    if failures:
        return f"{failures[0].get('reason', 'failure')} ({failures[0].get('arn', service_name)})"
    found = response.get("services") or []
    if not found:
        error = response.get("Error") or {}
        return f"{error.get('Code', 'no answer')}: {error.get('Message', '')}".rstrip(": ")
    svc = found[0]
    deployments = svc.get("deployments") or []
    primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    parts = [f"status {svc.get('status')}", f"running {svc.get('runningCount')}/{svc.get('desiredCount')}",
             f"{len(deployments)} deployments"]
    if primary.get("rolloutState"):
        parts.append(f"rollout {primary['rolloutState']}: {primary.get('rolloutStateReason', '')}".rstrip(": "))
    return ", ".join(parts)


# -- 2. ECS's own outcome ---------------------------------------------------------------------------

def _outcomes(clients: Clients, deployments: ServiceDeployments, cluster: str, services: list[ServiceConfig],
              deployed: dict[str, Any], record: Callable[[Check], Check], report: Report,
              outcomes: dict[str, DeploymentOutcome | None], sleep: Callable[[float], None], poll_seconds: float,
              timeout: float) -> list[Check]:
    checks = []
    for svc in services:
        name = f"ecs outcome: {svc.name}"
        entry = deployed.get(svc.name) or {}
        service_name, expected = entry.get("service_name"), entry.get("task_definition_arn")
        if not service_name or not expected:
            checks.append(record(Check(name, False, "no service_name or task_definition_arn in the stack outputs")))
            continue
        try:
            outcome = _finished(deployments, cluster, service_name, sleep, poll_seconds, timeout)
            running = _running(clients, cluster, service_name)
        except Exception as exc:
            checks.append(record(_api_failure(name, exc)))
            continue
        # A record of an older deployment (this release did not change the service) is not its own.
        outcomes[svc.name] = outcome if outcome is None or outcome.task_definition in (None, expected) else None
        check = _judge(name, svc.name, outcome, running, str(expected), report)
        checks.append(record(check))
    return checks


def _finished(deployments: ServiceDeployments, cluster: str, service: str, sleep: Callable[[float], None],
              poll_seconds: float, timeout: float) -> DeploymentOutcome | None:
    """The newest deployment once it has ended (or as it stands when `timeout` runs out)."""
    waited = 0.0
    while True:
        outcome = deployments.latest(cluster, service)
        if outcome is None or outcome.finished or waited >= timeout:
            return outcome
        step = _step(poll_seconds, timeout - waited)
        sleep(step)
        waited += step


def _running(clients: Clients, cluster: str, service: str) -> list[str | None]:
    """The service's task definition and its primary deployment's: after a rollback both are the old one."""
    found = clients.ecs.describe_services(cluster=cluster, services=[service]).get("services") or []
    if not found:
        return [None]
    primary: dict[str, Any] = next((d for d in found[0].get("deployments") or [] if d.get("status") == "PRIMARY"), {})
    return [found[0].get("taskDefinition"), primary.get("taskDefinition", found[0].get("taskDefinition"))]


def _judge(name: str, service: str, outcome: DeploymentOutcome | None, running_all: list[str | None],
           expected: str, report: Report) -> Check:
    running = next((td for td in running_all if td != expected), expected)
    if outcome is not None and outcome.rolled_back:
        report.rolled_back[service] = f"rolled back by ECS ({outcome.describe()})"
        return Check(name, False, f"{report.rolled_back[service]}; it runs {_short(running)}")
    if outcome is not None and not outcome.finished:
        return Check(name, False, f"ECS deployment still {outcome.describe()} after the wait")
    if outcome is not None and outcome.status != "SUCCESSFUL":
        report.rolled_back[service] = f"ECS deployment {outcome.describe()}"
        return Check(name, False, report.rolled_back[service])
    if running != expected:
        report.rolled_back[service] = (f"ECS runs {_short(running)}, not {_short(expected)}, the task definition "
                                       f"this release registered")
        return Check(name, False, report.rolled_back[service])
    if outcome is not None and outcome.task_definition not in (None, expected):
        # The newest deployment is an older one's (the service did not change): not this release's record.
        return Check(name, True, f"runs {_short(expected)}, this release's; ECS's newest deployment "
                                 f"is of {_short(outcome.task_definition)}")
    how = f"ECS deployment {outcome.describe()}" if outcome else "no ECS deployment record"
    return Check(name, True, f"{how}; runs {_short(expected)}, this release's")


def _short(task_definition: str | None) -> str:
    return task_definition.rsplit("/", 1)[-1] if task_definition else "nothing"


# -- 3. targets ------------------------------------------------------------------------------------

_WAITING = {"initial"}  # registered, first health checks still running
_LEAVING = {"draining"}  # the previous release's tasks being deregistered: not this release's health


def _targets(health: TargetHealth, services: list[ServiceConfig], deployed: dict[str, Any],
             record: Callable[[Check], Check], sleep: Callable[[float], None], poll_seconds: float,
             timeout: float) -> list[Check]:
    checks = []
    for svc in services:
        name = f"targets healthy: {svc.name}"
        entry = deployed.get(svc.name) or {}
        arn = entry.get("target_group_arn")
        if not arn:
            checks.append(record(Check(name, False, "no target group in the stack outputs")))
            continue
        # A traffic-shifting service serves from whichever of its two groups ECS last shifted to.
        groups = [arn, *([entry["alternate_target_group_arn"]] if entry.get("alternate_target_group_arn") else [])]
        waited = 0.0
        while True:
            try:
                targets = [t for group in groups for t in health.describe(group)]
            except Exception as exc:
                checks.append(record(_api_failure(name, exc)))
                break
            current = [t for t in targets if t.state not in _LEAVING]
            bad = [t for t in current if t.state not in _WAITING and t.state != "healthy"]
            pending = [t for t in current if t.state in _WAITING]
            if bad:
                checks.append(record(Check(name, False, "; ".join(_describe_target(t) for t in bad))))
                break
            if pending and waited < timeout:
                step = _step(poll_seconds, timeout - waited)
                sleep(step)
                waited += step
                continue
            if pending:
                checks.append(record(Check(name, False, f"still initial after {waited:.0f}s: "
                                                        + "; ".join(_describe_target(t) for t in pending))))
            elif not current:
                checks.append(record(Check(name, False, "no registered targets: nothing serves this service")))
            else:
                checks.append(record(Check(name, True, f"{len(current)}/{len(current)} targets healthy")))
            break
    return checks


def _describe_target(target: TargetState) -> str:
    where = f"{target.id}:{target.port}" if target.port else target.id
    return f"{where} {target.state}" + (f" ({target.reason})" if target.reason else "")


# -- 4. smoke --------------------------------------------------------------------------------------

def _smoke(gateway_url: str, services: list[ServiceConfig], record: Callable[[Check], Check],
           timeout: float) -> list[Check]:
    checks = []
    for svc in services:
        name = f"smoke: {svc.name}"
        if not gateway_url:
            checks.append(record(Check(name, False, "no gateway_url in the stack outputs")))
            continue
        url = gateway_url.rstrip("/") + svc.smoke_url_path
        headers = {"User-Agent": "refarch-verify/1"}
        if svc.routes[0].host:
            # Host-based listener rules route on the Host header, not on the gateway's own name.
            headers["Host"] = svc.routes[0].host
        request = urllib.request.Request(url, headers=headers, method="GET")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            checks.append(record(Check(name, False, f"GET {url}: {reason}")))
            continue
        took = time.monotonic() - started
        ok = status < 400
        checks.append(record(Check(name, ok, f"GET {url} -> {status} in {took * 1000:.0f} ms")))
    return checks


# -- 5. alarms --------------------------------------------------------------------------------------

def _alarm_names(outputs: dict[str, Any], services: list[ServiceConfig]) -> list[str]:
    """The stack's health alarms and each service's own (its deployment alarms where exported)."""
    names = list(outputs.get("health_alarm_names") or [])
    for svc in services:
        entry = (outputs.get("services") or {}).get(svc.name) or {}
        names += list(entry.get("deployment_alarm_names") or entry.get("health_alarm_names") or [])
    return list(dict.fromkeys(names))


def _alarms(clients: Clients, alarms: list[str], outcomes: dict[str, DeploymentOutcome | None],
            verification_started: datetime, record: Callable[[Check], Check], sleep: Callable[[float], None],
            poll_seconds: float, bake_seconds: float) -> Check:
    name = "alarms: this deployment"
    if not alarms:
        return record(Check(name, False, "no health alarms in the stack outputs: nothing would judge the deployment"))
    starts = [o.started_at for o in outcomes.values() if o is not None and o.started_at is not None]
    # Its own window: from the first of its ECS deployments (or, without a record, this verification).
    since = min([_aware(t) for t in starts] or [verification_started])
    watched = bool(outcomes) and all(o is not None and o.alarms_status == WATCHED for o in outcomes.values())
    # Where ECS watched, only what is left of the alarms' window since the deployment began (ECS
    # derives a rolling deployment's bake itself, possibly shorter); elsewhere the pipeline's bake.
    left = ALARM_WINDOW_SECONDS - (datetime.now(UTC) - since).total_seconds()
    bake = max(0.0, math.ceil(left)) if watched else float(bake_seconds)
    elapsed, polls = 0.0, 0
    while True:
        polls += 1
        try:
            states = _alarm_states(clients, alarms)
        except Exception as exc:
            return record(_api_failure(name, exc))
        unknown = [a for a in alarms if a not in states]
        if unknown:
            return record(Check(name, False, f"alarms not found: {', '.join(unknown)}"))
        firing = [(a, s) for a, s in states.items() if s["StateValue"] == "ALARM"]
        fired = [(a, s) for a, s in firing if _changed(s) >= since]
        if fired:
            detail = "; ".join(f"{a} in ALARM: {s.get('StateReason', '')}".rstrip(": ") for a, s in fired)
            return record(Check(name, False, f"{detail} (since {_clock(since)}, {elapsed:.0f}s into the watch)"))
        if elapsed >= bake:
            break
        step = _step(poll_seconds, bake - elapsed)
        sleep(step)
        elapsed += step
    before = sorted(a for a, _ in firing)
    how = (f"ECS watched them through its bake ({WATCHED})" + (f", then for {bake:.0f}s more to cover the "
                                                                 f"{ALARM_WINDOW_SECONDS}s window" if bake else "")
           if watched else
           f"watched for {bake:.0f}s ({polls} polls): ECS did not watch them" if bake else
           "ECS did not watch them and the pipeline bake is off (delivery.bake_seconds: 0)")
    detail = f"{len(alarms)} alarms, none into ALARM since {_clock(since)}; {how}"
    if before:
        detail += f"; already in ALARM before this deployment, not its own: {', '.join(before)}"
    return record(Check(name, True, detail))


def _changed(alarm: dict[str, Any]) -> datetime:
    # StateUpdatedTimestamp also moves when only the evaluation state changes; the transition is what counts.
    return _aware(alarm.get("StateTransitionedTimestamp") or alarm.get("StateUpdatedTimestamp"))


def _aware(moment: Any) -> datetime:
    if not isinstance(moment, datetime):
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%SZ")


def _alarm_states(clients: Clients, alarms: list[str]) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {}
    for start in range(0, len(alarms), _DESCRIBE_ALARMS_MAX):
        chunk = alarms[start:start + _DESCRIBE_ALARMS_MAX]
        paginator = clients.cloudwatch.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmNames=chunk, AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                states[alarm["AlarmName"]] = alarm
    return states


def _step(poll_seconds: float, remaining: float) -> float:
    return min(poll_seconds, remaining) if poll_seconds > 0 else remaining


def _api_failure(name: str, exc: Exception) -> Check:
    """An AWS refusal fails the check it belongs to; broken credentials stop verification altogether."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError) or error_code(exc) in CREDENTIAL_CODES:
        raise exc
    message = exc.response.get("Error", {}).get("Message", "")
    return Check(name, False, f"{error_code(exc)}: {message}")
