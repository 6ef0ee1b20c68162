"""A stand-in for ECS's service-deployment records, which moto does not have.

moto implements DescribeServices but not ListServiceDeployments, DescribeServiceDeployments or
DescribeServiceRevisions. `EcsRecords` answers `ServiceDeployments.latest` with the record ECS
would keep for what moto's service really runs (its primary deployment: id, task definition,
creation time, and the alarms watched to the end), unless a test scripts another ending.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ops.delivery.deployments import DeploymentOutcome

REGION = "us-east-1"


class EcsRecords:
    def __init__(self, clients: Any = None):
        self._clients = clients
        self.scripted: dict[str, list[DeploymentOutcome | None]] = {}
        self.asked: list[str] = []

    def script(self, service: str, *outcomes: DeploymentOutcome | None) -> None:
        """Answers for `service` in turn (the last one repeats)."""
        self.scripted[service] = list(outcomes)

    def latest(self, cluster: str, service: str) -> DeploymentOutcome | None:
        self.asked.append(service)
        queue = self.scripted.get(service)
        if queue:
            return queue.pop(0) if len(queue) > 1 else queue[0]
        return self.as_ecs_records_it(cluster, service)

    def as_ecs_records_it(self, cluster: str, service: str, **changes: Any) -> DeploymentOutcome:
        found = self.ecs.describe_services(cluster=cluster, services=[service])["services"][0]
        primary = next(d for d in found["deployments"] if d["status"] == "PRIMARY")
        record = {
            "arn": f"arn:aws:ecs:{REGION}:123456789012:service-deployment/{cluster}/{service}/{primary['id'].split('/')[-1]}",
            "status": "SUCCESSFUL", "reason": "", "task_definition": primary["taskDefinition"],
            # As if it began a canary's length before moto created the service: ECS watched it through.
            "started_at": primary["createdAt"] - timedelta(minutes=15), "alarms_status": "MONITORING_COMPLETE",
        }
        return DeploymentOutcome(**{**record, **changes})

    @property
    def ecs(self) -> Any:
        if self._clients is None:
            from ops.delivery.aws import Clients

            self._clients = Clients(REGION)  # the moto endpoint comes from AWS_ENDPOINT_URL
        return self._clients.ecs


def now() -> datetime:
    return datetime.now(UTC)
