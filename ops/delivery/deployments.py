"""ECS's own record of a service deployment: how it ended, what it ran, whether its alarms were watched.

ECS keeps one "service deployment" per rollout (ListServiceDeployments / DescribeServiceDeployments,
2024) with a final status that says what `pulumi up` does not: SUCCESSFUL, or ROLLBACK_SUCCESSFUL when
ECS itself rolled it back (circuit breaker, a deployment alarm, a failed lifecycle hook, Ctrl-C with
sigint_rollback). Verification reads it through the `ServiceDeployments` seam; moto has none of these
three calls, so tests pass a stand-in, and `EcsServiceDeployments` is the one real implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# ECS API ServiceDeploymentStatus, grouped by what verification does with them.
SUCCEEDED = frozenset({"SUCCESSFUL"})
ROLLED_BACK = frozenset({"ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"})
STOPPED = frozenset({"STOPPED"})
RUNNING = frozenset({"PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED"})
# ServiceDeploymentAlarms.status once ECS has watched the alarms through the whole bake.
WATCHED = "MONITORING_COMPLETE"
_LIST_MAX = 20


@dataclass(frozen=True)
class DeploymentOutcome:
    arn: str
    status: str
    reason: str = ""
    task_definition: str | None = None  # the task definition of the revision it deployed
    started_at: datetime | None = None
    alarms_status: str | None = None  # TRIGGERED | MONITORING | MONITORING_COMPLETE | DISABLED
    triggered_alarms: list[str] = field(default_factory=list)
    rollback_reason: str = ""

    @property
    def rolled_back(self) -> bool:
        return self.status in ROLLED_BACK

    @property
    def finished(self) -> bool:
        return self.status not in RUNNING

    def describe(self) -> str:
        parts = [f"{self.status}" + (f": {self.reason}" if self.reason else "")]
        if self.triggered_alarms:
            parts.append(f"alarms fired: {', '.join(self.triggered_alarms)}")
        if self.rollback_reason and self.rollback_reason != self.reason:
            parts.append(f"rollback: {self.rollback_reason}")
        return "; ".join(parts)


class ServiceDeployments(Protocol):
    """Where ECS's deployment records come from: the ECS API in production, a stand-in in tests."""

    def latest(self, cluster: str, service: str) -> DeploymentOutcome | None: ...


class EcsServiceDeployments:
    """The newest service deployment of a service, with the task definition of its target revision."""

    def __init__(self, clients: Any):
        self.aws = clients

    def latest(self, cluster: str, service: str) -> DeploymentOutcome | None:
        ecs = self.aws.ecs
        briefs = ecs.list_service_deployments(cluster=cluster, service=service,
                                              maxResults=_LIST_MAX).get("serviceDeployments") or []
        if not briefs:
            return None
        newest = max(briefs, key=_created)
        found = ecs.describe_service_deployments(
            serviceDeploymentArns=[newest["serviceDeploymentArn"]]).get("serviceDeployments") or []
        detail: dict[str, Any] = found[0] if found else {}
        revision = (detail.get("targetServiceRevision") or {}).get("arn") or newest.get("targetServiceRevisionArn")
        task_definition = None
        if revision:
            revisions = ecs.describe_service_revisions(serviceRevisionArns=[revision]).get("serviceRevisions") or []
            task_definition = revisions[0].get("taskDefinition") if revisions else None
        alarms = detail.get("alarms") or {}
        return DeploymentOutcome(
            arn=newest["serviceDeploymentArn"],
            status=str(detail.get("status") or newest.get("status") or ""),
            reason=str(detail.get("statusReason") or newest.get("statusReason") or ""),
            task_definition=task_definition,
            started_at=detail.get("startedAt") or detail.get("createdAt") or newest.get("startedAt")
            or newest.get("createdAt"),
            alarms_status=alarms.get("status"),
            triggered_alarms=list(alarms.get("triggeredAlarmNames") or []),
            rollback_reason=str((detail.get("rollback") or {}).get("reason") or ""),
        )


def _created(brief: dict[str, Any]) -> float:
    moment = brief.get("createdAt") or brief.get("startedAt")
    return moment.timestamp() if isinstance(moment, datetime) else 0.0
