"""Break-glass rollback: when Pulumi itself cannot run, point ECS services back at an older revision.

This changes the running services behind Pulumi's back, so the stack state drifts from reality
until the next Pulumi run reconciles it; the caller records that (see `reconcile_hint`).

Every service's target is resolved before anything changes: if one service has nowhere to go
back to, the whole rollback is refused and nothing is touched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ops.delivery.aws import Clients, translate_errors
from ops.errors import OpsError

_DESCRIBE_SERVICES_MAX = 10


@dataclass(frozen=True)
class Step:
    service: str
    current: str  # task definition ARN now
    target: str  # task definition ARN to go back to


def family_revision(task_definition: str) -> tuple[str, int]:
    """`arn:...:task-definition/<family>:<rev>` or `<family>:<rev>` -> (family, rev)."""
    tail = task_definition.rsplit("/", 1)[-1]
    family, _, revision = tail.rpartition(":")
    if not family or not revision.isdigit():
        raise OpsError(f"{task_definition!r} is not a task definition revision (<family>:<revision>)")
    return family, int(revision)


def short(task_definition: str) -> str:
    family, revision = family_revision(task_definition)
    return f"{family}:{revision}"


def plan(clients: Clients, cluster: str, services: list[str],
         task_definitions: Mapping[str, str] | None = None) -> list[Step]:
    """Where each service would go: `task_definitions[service]` if given (the revision a release
    being restored ran), else the newest ACTIVE revision of its family older than the current one.
    """
    wanted = dict(task_definitions or {})
    problems: list[str] = []
    steps: list[Step] = []
    with translate_errors(f"reading the services of cluster {cluster}"):
        current = _current_task_definitions(clients, cluster, services, problems)
        for service in services:
            if service not in current:
                continue
            now = current[service]
            if service in wanted:
                target = _active_revision(clients, wanted[service])
                if target is None:
                    problems.append(f"{service}: {wanted[service]} is not an ACTIVE task definition")
                    continue
                if target == now:
                    problems.append(f"{service}: already runs {short(now)}")
                    continue
            else:
                target = _previous_revision(clients, now)
                if target is None:
                    problems.append(f"{service}: no ACTIVE revision of {family_revision(now)[0]} older than "
                                    f"{short(now)} to go back to")
                    continue
            steps.append(Step(service, now, target))
    if problems:
        raise OpsError("break-glass rollback refused, nothing changed:\n  " + "\n  ".join(problems))
    return steps


def rollback_services(clients: Clients, cluster: str, services: list[str], *,
                      task_definitions: Mapping[str, str] | None = None, wait: bool = True,
                      timeout: float = 600, poll_seconds: float = 10) -> list[str]:
    """Point each service at its previous task definition revision; returns notes for the ledger."""
    steps = plan(clients, cluster, services, task_definitions)
    notes = []
    with translate_errors(f"rolling back services of cluster {cluster}"):
        for step in steps:
            clients.ecs.update_service(cluster=cluster, service=step.service, taskDefinition=step.target)
            notes.append(f"break-glass: ECS service {step.service} moved from {short(step.current)} "
                         f"to {short(step.target)}")
        if wait and steps:
            notes.append(_wait_stable(clients, cluster, [s.service for s in steps], timeout, poll_seconds))
    return notes


def reconcile_hint(stack: str, release_id: str | None = None) -> str:
    """The ledger note that tells the next person how to bring Pulumi's state back in line."""
    target = f" --to {release_id}" if release_id else ""
    return (f"drift: ECS services were changed outside Pulumi; reconcile with `invoke rollback --stack {stack}{target}` "
            f"once Pulumi runs again (or `pulumi refresh --stack {stack}` to adopt the running state)")


def _current_task_definitions(clients: Clients, cluster: str, services: list[str],
                              problems: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(services), _DESCRIBE_SERVICES_MAX):
        chunk = services[start:start + _DESCRIBE_SERVICES_MAX]
        answer = clients.ecs.describe_services(cluster=cluster, services=chunk)
        for failure in answer.get("failures", []):
            problems.append(f"{failure.get('arn', '?').rsplit('/', 1)[-1]}: {failure.get('reason', 'not found')} "
                            f"in cluster {cluster}")
        for svc in answer.get("services", []):
            if svc.get("status") != "ACTIVE":
                problems.append(f"{svc['serviceName']}: service is {svc.get('status')}")
                continue
            found[svc["serviceName"]] = svc["taskDefinition"]
    return found


def _active_revision(clients: Clients, task_definition: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        described = clients.ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    except ClientError:
        return None
    return described["taskDefinitionArn"] if described.get("status") == "ACTIVE" else None


def _previous_revision(clients: Clients, current: str) -> str | None:
    family, revision = family_revision(current)
    older: list[tuple[int, str]] = []
    kwargs: dict[str, Any] = {"familyPrefix": family, "status": "ACTIVE"}
    while True:
        page = clients.ecs.list_task_definitions(**kwargs)
        for arn in page.get("taskDefinitionArns", []):
            their_family, their_revision = family_revision(arn)
            # familyPrefix may match longer families (`app` vs `app-migrate`): compare exactly.
            if their_family == family and their_revision < revision:
                older.append((their_revision, arn))
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    return max(older)[1] if older else None


def _wait_stable(clients: Clients, cluster: str, services: list[str], timeout: float, poll_seconds: float) -> str:
    from botocore.exceptions import WaiterError

    attempts = max(1, math.ceil(timeout / max(poll_seconds, 0.01)))
    started = time.monotonic()
    try:
        for start in range(0, len(services), _DESCRIBE_SERVICES_MAX):
            clients.ecs.get_waiter("services_stable").wait(
                cluster=cluster, services=services[start:start + _DESCRIBE_SERVICES_MAX],
                WaiterConfig={"Delay": poll_seconds, "MaxAttempts": attempts},
            )
    except WaiterError as exc:
        return (f"break-glass: services not stable after {time.monotonic() - started:.0f}s ({exc}); watch them with `aws ecs describe-services --cluster {cluster} --services "
                f"{' '.join(services)}`")
    return f"break-glass: services stable after {time.monotonic() - started:.0f}s: {', '.join(services)}"
