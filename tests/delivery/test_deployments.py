"""`EcsServiceDeployments`, the real reader of ECS's service-deployment records.

moto has none of ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions, so
these calls are checked with botocore's own Stubber: it validates every request against the ECS
API model (operation, parameter names and types) and every canned response against the response
shape, which is what a misspelt parameter or a misread field would break.
"""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from ops.delivery.deployments import EcsServiceDeployments

CLUSTER = "refarch-prod"
SERVICE = "refarch-prod-products"
BASE = f"arn:aws:ecs:us-east-1:123456789012:service-deployment/{CLUSTER}/{SERVICE}"
REVISION = f"arn:aws:ecs:us-east-1:123456789012:service-revision/{CLUSTER}/{SERVICE}/9313423515462893900"
TASK = "arn:aws:ecs:us-east-1:123456789012:task-definition/refarch-prod-products:7"


class Clients:
    def __init__(self, ecs):
        self.ecs = ecs


@pytest.fixture
def ecs():
    client = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def brief(suffix: str, created: datetime, status: str) -> dict:
    return {"serviceDeploymentArn": f"{BASE}/{suffix}", "serviceArn": f"arn:aws:ecs:us-east-1:123456789012:service/{CLUSTER}/{SERVICE}",
            "clusterArn": f"arn:aws:ecs:us-east-1:123456789012:cluster/{CLUSTER}", "createdAt": created,
            "targetServiceRevisionArn": REVISION, "status": status}


def test_reads_the_newest_deployment_its_alarms_and_the_task_definition_of_its_revision(ecs):
    client, stub = ecs
    older = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    newer = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    stub.add_response("list_service_deployments",
                      {"serviceDeployments": [brief("old", older, "SUCCESSFUL"), brief("new", newer, "ROLLBACK_SUCCESSFUL")]},
                      {"cluster": CLUSTER, "service": SERVICE, "maxResults": 20})
    stub.add_response("describe_service_deployments", {"serviceDeployments": [{
        "serviceDeploymentArn": f"{BASE}/new", "status": "ROLLBACK_SUCCESSFUL", "startedAt": newer,
        "statusReason": "Service deployment rolled back because of CloudWatch alarm(s)",
        "targetServiceRevision": {"arn": REVISION, "requestedTaskCount": 3, "runningTaskCount": 0,
                                  "pendingTaskCount": 0},
        "alarms": {"status": "TRIGGERED", "alarmNames": [f"{SERVICE}-5xx-rate"],
                   "triggeredAlarmNames": [f"{SERVICE}-5xx-rate"]},
        "rollback": {"reason": "CloudWatch alarm(s) triggered", "startedAt": newer,
                     "serviceRevisionArn": REVISION.replace("9313423515462893900", "1920498462936580504")},
    }], "failures": []}, {"serviceDeploymentArns": [f"{BASE}/new"]})
    stub.add_response("describe_service_revisions", {"serviceRevisions": [
        {"serviceRevisionArn": REVISION, "taskDefinition": TASK}], "failures": []},
        {"serviceRevisionArns": [REVISION]})

    outcome = EcsServiceDeployments(Clients(client)).latest(CLUSTER, SERVICE)

    assert outcome is not None and outcome.rolled_back and outcome.finished
    assert (outcome.arn, outcome.task_definition, outcome.started_at) == (f"{BASE}/new", TASK, newer)
    assert (outcome.alarms_status, outcome.triggered_alarms) == ("TRIGGERED", [f"{SERVICE}-5xx-rate"])
    assert outcome.describe() == ("ROLLBACK_SUCCESSFUL: Service deployment rolled back because of CloudWatch alarm(s); "
                                  f"alarms fired: {SERVICE}-5xx-rate; rollback: CloudWatch alarm(s) triggered")


def test_a_service_with_no_deployment_record_has_no_outcome(ecs):
    client, stub = ecs
    stub.add_response("list_service_deployments", {"serviceDeployments": []},
                      {"cluster": CLUSTER, "service": SERVICE, "maxResults": 20})
    assert EcsServiceDeployments(Clients(client)).latest(CLUSTER, SERVICE) is None
