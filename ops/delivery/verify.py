"""Post-deploy verification: is the new release actually serving, and does it stay healthy?

Four stages, each a list of checks reported live through `on_check` as they complete:
1. every ECS service stable (one deployment, running == desired), through boto3's
   `services_stable` waiter with a bounded wait;
2. every target of each service's target group healthy (through the `TargetHealth` seam);
3. an HTTP GET of each service's smoke path through the gateway URL answers < 400;
4. no health alarm in ALARM for the whole bake window (polled; the first ALARM fails at once).

A failed stage ends verification: later stages would only delay the rollback it triggers.
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.config import ServiceConfig
from ops.delivery.aws import CREDENTIAL_CODES, Clients, error_code, translate_errors

_DESCRIBE_ALARMS_MAX = 100


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

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
           target_health: TargetHealth | None = None, sleep: Callable[[float], None] = time.sleep,
           poll_seconds: float = 10, stable_timeout: float = 900, health_timeout: float = 300) -> Report:
    """Run the checks against a deployed stack's outputs; never raises for an unhealthy stack.

    `sleep` paces the target-health and alarm polls (the bake window is measured in the time it
    sleeps); the ECS waiter sleeps on its own, `poll_seconds` apart, for at most `stable_timeout`.
    `poll_seconds=0` (tests) polls each thing once more after a single sleep of its whole window.
    """
    if poll_seconds < 0:
        raise ValueError("poll_seconds must be >= 0")
    report = Report()

    def record(check: Check) -> Check:
        report.checks.append(check)
        on_check(check)
        return check

    deployed = outputs.get("services") or {}
    stages: Sequence[Callable[[], list[Check]]] = (
        lambda: _stable(clients, outputs.get("cluster_name", ""), services, deployed, record,
                        poll_seconds, stable_timeout),
        lambda: _targets(target_health or ElbTargetHealth(clients), services, deployed, record,
                         sleep, poll_seconds, health_timeout),
        lambda: _smoke(str(outputs.get("gateway_url", "")), services, record, smoke_timeout),
        lambda: [_bake(clients, _alarm_names(outputs, services), record, sleep, poll_seconds, bake_seconds)],
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


# -- 2. targets ------------------------------------------------------------------------------------

_WAITING = {"initial"}  # registered, first health checks still running
_LEAVING = {"draining"}  # the previous release's tasks being deregistered: not this release's health


def _targets(health: TargetHealth, services: list[ServiceConfig], deployed: dict[str, Any],
             record: Callable[[Check], Check], sleep: Callable[[float], None], poll_seconds: float,
             timeout: float) -> list[Check]:
    checks = []
    for svc in services:
        name = f"targets healthy: {svc.name}"
        arn = (deployed.get(svc.name) or {}).get("target_group_arn")
        if not arn:
            checks.append(record(Check(name, False, "no target group in the stack outputs")))
            continue
        waited = 0.0
        while True:
            try:
                targets = health.describe(arn)
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


# -- 3. smoke --------------------------------------------------------------------------------------

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


# -- 4. bake ---------------------------------------------------------------------------------------

def _alarm_names(outputs: dict[str, Any], services: list[ServiceConfig]) -> list[str]:
    names = list(outputs.get("health_alarm_names") or [])
    for svc in services:
        names += list(((outputs.get("services") or {}).get(svc.name) or {}).get("health_alarm_names") or [])
    return list(dict.fromkeys(names))


def _bake(clients: Clients, alarms: list[str], record: Callable[[Check], Check],
          sleep: Callable[[float], None], poll_seconds: float, bake_seconds: float) -> Check:
    name = "alarms: bake"
    if not alarms:
        return record(Check(name, False, "no health alarms in the stack outputs: the bake would watch nothing"))
    elapsed = 0.0
    polls = 0
    while True:
        polls += 1
        try:
            states = _alarm_states(clients, alarms)
        except Exception as exc:
            return record(_api_failure(name, exc))
        unknown = [a for a in alarms if a not in states]
        if unknown:
            return record(Check(name, False, f"alarms not found: {', '.join(unknown)}"))
        firing = [(a, states[a]) for a in alarms if states[a]["StateValue"] == "ALARM"]
        if firing:
            detail = "; ".join(f"{a} in ALARM: {s.get('StateReason', '')}".rstrip(": ") for a, s in firing)
            return record(Check(name, False, f"{detail} ({elapsed:.0f}s into the {bake_seconds:.0f}s bake)"))
        if elapsed >= bake_seconds:
            break
        step = _step(poll_seconds, bake_seconds - elapsed)
        sleep(step)
        elapsed += step
    return record(Check(name, True, f"{len(alarms)} health alarms out of ALARM for {bake_seconds:.0f}s "
                                    f"({polls} polls)"))


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
