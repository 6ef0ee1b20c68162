"""Verification against a real moto server and a real local HTTP gateway.

moto always reports targets healthy, so unhealthy ones come through the TargetHealth seam; alarms
are moved with moto's real `set_alarm_state`; the ECS waiter and the running task definition come
from moto's services; ECS's service-deployment records (which moto lacks) from `EcsRecords`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from ops.delivery.deployments import DeploymentOutcome
from ops.delivery.verify import Check, TargetState, verify
from tests.delivery.ecs_records import EcsRecords, now

EXPECTED_ORDER = [
    "ecs stable: products", "ecs stable: orders",
    "ecs outcome: products", "ecs outcome: orders",
    "targets healthy: products", "targets healthy: orders",
    "smoke: products", "smoke: orders",
    "alarms: this deployment",
]


@dataclass
class Recorder:
    """on_check and sleep seams that remember what was reported by the time each sleep began."""

    checks: list[Check] = field(default_factory=list)
    sleeps: list[tuple[float, list[str]]] = field(default_factory=list)
    during_sleep: list = field(default_factory=list)  # callables run at the n-th sleep

    def on_check(self, check: Check) -> None:
        self.checks.append(check)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append((seconds, [c.name for c in self.checks]))
        if self.during_sleep:
            self.during_sleep.pop(0)()


class Targets:
    """A TargetHealth stand-in: per target group ARN, a list of answers given in turn (last repeats)."""

    def __init__(self, answers: dict[str, list[list[TargetState]]]):
        self.answers = answers
        self.asked: list[str] = []

    def describe(self, target_group_arn: str) -> list[TargetState]:
        self.asked.append(target_group_arn)
        queue = self.answers.get(target_group_arn) or [[TargetState("10.0.0.1", 8080, "healthy")]]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def run(stack, clients, recorder: Recorder, **overrides):
    options = dict(bake_seconds=2, smoke_timeout=2.0, services=stack.services, on_check=recorder.on_check,
                   sleep=recorder.sleep, poll_seconds=0.5, stable_timeout=1.0, deployments=EcsRecords(clients))
    options.update(overrides)
    return verify(clients, stack.outputs, **options)


def unwatched(stack, clients, started=None) -> EcsRecords:
    """Records of deployments ECS did not watch the alarms of (one was firing when they started)."""
    records = EcsRecords(clients)
    for name in ("products", "orders"):
        service = stack.service_name(name)
        changes = {"alarms_status": "DISABLED", **({"started_at": started} if started else {})}
        records.script(service, records.as_ecs_records_it(stack.cluster, service, **changes))
    return records


def test_healthy_stack_passes_every_check_reported_live_in_order(deployed_stack, clients, gateway):
    recorder = Recorder()
    report = run(deployed_stack, clients, recorder)

    assert report.ok, report.summary()
    assert [c.name for c in report.checks] == EXPECTED_ORDER
    assert recorder.checks == report.checks and report.rolled_back == {}
    # ECS's record and moto's service agree: the release's own task definition runs.
    expected = deployed_stack.outputs["services"]["products"]["task_definition_arn"].rsplit("/", 1)[-1]
    assert report.checks[2].detail == f"ECS deployment SUCCESSFUL; runs {expected}, this release's"
    # ECS watched the alarms through its bake: the pipeline does not bake again.
    assert recorder.sleeps == []
    assert report.checks[-1].detail.startswith("5 alarms, none into ALARM since ")
    assert report.checks[-1].detail.endswith("ECS watched them through its bake (MONITORING_COMPLETE)")
    # The real targets moto registered were read through the default (ELB) seam.
    assert report.checks[4].detail == "2/2 targets healthy"
    # Each smoke check really went through the gateway, on the service's route.
    assert sorted(path for path, _ in gateway.requests) == ["/orders/", "/products/"]


def test_pipeline_bakes_only_when_ecs_did_not_watch_the_alarms(deployed_stack, clients):
    recorder = Recorder()
    report = run(deployed_stack, clients, recorder, deployments=unwatched(deployed_stack, clients))
    assert report.ok, report.summary()
    # Live: the eight earlier checks had been reported before the bake's first sleep began.
    assert recorder.sleeps[0][1] == EXPECTED_ORDER[:8]
    # The bake polled across its whole window: 2 s in 0.5 s steps.
    assert [seconds for seconds, _ in recorder.sleeps] == [0.5, 0.5, 0.5, 0.5]
    assert "watched for 2s (5 polls): ECS did not watch them" in report.checks[-1].detail


def test_alarm_going_off_during_the_bake_fails_fast_and_names_it(deployed_stack, clients):
    alarm = deployed_stack.outputs["services"]["orders"]["health_alarm_names"][0]
    recorder = Recorder(during_sleep=[lambda: clients.cloudwatch.set_alarm_state(
        AlarmName=alarm, StateValue="ALARM", StateReason="Threshold Crossed: 9 5xx in 1 minute")])

    report = run(deployed_stack, clients, recorder, bake_seconds=60, deployments=unwatched(deployed_stack, clients))

    assert not report.ok
    failed = report.failures
    assert [c.name for c in failed] == ["alarms: this deployment"]
    assert failed[0].detail.startswith(f"{alarm} in ALARM: Threshold Crossed: 9 5xx in 1 minute")
    assert len(recorder.sleeps) == 1, "must stop at the first ALARM, not sit out the 60 s window"


def test_alarm_that_fired_during_the_deployment_fails_it(deployed_stack, clients):
    # The deployments began when moto created the services; the alarm went off after that.
    alarm = deployed_stack.outputs["health_alarm_names"][0]
    clients.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx")
    recorder = Recorder()
    report = run(deployed_stack, clients, recorder)
    assert report.failures[0].detail.startswith(f"{alarm} in ALARM: 5xx (since ")
    assert recorder.sleeps == []


def test_alarm_already_firing_before_the_deployment_does_not_fail_a_good_release(deployed_stack, clients):
    # A hotfix for what set this alarm off: the alarm still fires when the hotfix's deployment starts.
    alarm = deployed_stack.outputs["services"]["products"]["health_alarm_names"][0]
    clients.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx before the hotfix")
    # ECS ignores every alarm of a deployment that starts with one in ALARM, so the pipeline bakes.
    records = unwatched(deployed_stack, clients, started=now() + timedelta(seconds=1))

    report = run(deployed_stack, clients, Recorder(), deployments=records)

    assert report.ok, report.summary()
    assert report.checks[-1].detail.endswith(f"already in ALARM before this deployment, not its own: {alarm}")


def test_unknown_alarm_name_fails_instead_of_being_ignored(deployed_stack, clients):
    deployed_stack.outputs["health_alarm_names"].append("refarch-test-deleted-alarm")
    report = run(deployed_stack, clients, Recorder(), bake_seconds=0)
    assert report.failures[0].detail == "alarms not found: refarch-test-deleted-alarm"


def test_unhealthy_target_fails_and_names_the_target(deployed_stack, clients):
    arn = deployed_stack.outputs["services"]["products"]["target_group_arn"]
    targets = Targets({arn: [[
        TargetState("10.0.0.11", 8080, "healthy"),
        TargetState("10.0.1.11", 8080, "unhealthy", "Target.ResponseCodeMismatch Health checks failed with 503"),
    ]]})
    recorder = Recorder()

    report = run(deployed_stack, clients, recorder, target_health=targets)

    assert not report.ok
    assert [(c.name, c.detail) for c in report.failures] == [(
        "targets healthy: products",
        "10.0.1.11:8080 unhealthy (Target.ResponseCodeMismatch Health checks failed with 503)",
    )]
    # A failed stage ends verification: no smoke checks, no bake.
    assert [c.name for c in report.checks] == EXPECTED_ORDER[:6]


def test_targets_still_initial_are_polled_until_healthy(deployed_stack, clients):
    arn = deployed_stack.outputs["services"]["orders"]["target_group_arn"]
    targets = Targets({arn: [
        [TargetState("10.0.0.12", 8080, "initial", "Elb.RegistrationInProgress")],
        [TargetState("10.0.0.12", 8080, "healthy"), TargetState("10.0.9.9", 8080, "draining")],
    ]})
    recorder = Recorder()
    report = run(deployed_stack, clients, recorder, target_health=targets, bake_seconds=0)
    assert report.ok, report.summary()
    assert targets.asked.count(arn) == 2 and recorder.sleeps[0][0] == 0.5
    # Draining targets belong to the release being replaced: not counted either way.
    assert report.checks[5].detail == "1/1 targets healthy"


def test_target_group_without_targets_fails(deployed_stack, clients):
    arn = deployed_stack.outputs["services"]["orders"]["target_group_arn"]
    report = run(deployed_stack, clients, Recorder(), target_health=Targets({arn: [[]]}))
    assert report.failures[0].detail == "no registered targets: nothing serves this service"


def test_smoke_500_from_the_gateway_fails_and_names_the_service(deployed_stack, clients, gateway):
    gateway.set("/orders/", 500)
    report = run(deployed_stack, clients, Recorder())
    assert [c.name for c in report.failures] == ["smoke: orders"]
    assert report.failures[0].detail.startswith(f"GET {gateway.url}/orders/ -> 500 in ")
    assert "alarms: this deployment" not in [c.name for c in report.checks]


def test_smoke_4xx_fails_too(deployed_stack, clients, gateway):
    gateway.set("/products/", 404)
    report = run(deployed_stack, clients, Recorder())
    assert [c.name for c in report.failures] == ["smoke: products"]


def test_smoke_connection_refused_fails(deployed_stack, clients):
    import socket

    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    deployed_stack.outputs["gateway_url"] = dead
    report = run(deployed_stack, clients, Recorder())
    assert [c.name for c in report.failures] == ["smoke: products", "smoke: orders"]
    assert report.failures[0].detail.startswith(f"GET {dead}/products/: ")
    assert "refused" in report.failures[0].detail.lower()


def test_smoke_sends_the_route_host_for_host_based_routes(deployed_stack, clients, gateway):
    from infra.config import Route

    deployed_stack.services[0] = deployed_stack.services[0].model_copy(
        update={"routes": [Route(path="/products/*", host="api.example.com")]})
    report = run(deployed_stack, clients, Recorder(), bake_seconds=0)
    assert report.ok, report.summary()
    assert ("/products/", "api.example.com") in gateway.requests


def test_unstable_ecs_service_fails_within_the_bound(stack_builder, clients):
    # moto runs 2 tasks per service: desiring 3 never becomes stable.
    stack = stack_builder(desired_count=3)
    report = run(stack, clients, Recorder(), poll_seconds=0.1, stable_timeout=0.3)
    assert [c.name for c in report.failures] == ["ecs stable: products", "ecs stable: orders"]
    assert "running 2/3" in report.failures[0].detail
    assert [c.name for c in report.checks] == EXPECTED_ORDER[:2]


def test_missing_service_output_fails(deployed_stack, clients):
    del deployed_stack.outputs["services"]["orders"]
    report = run(deployed_stack, clients, Recorder())
    assert ("ecs stable: orders", "not in the stack outputs") in [(c.name, c.detail) for c in report.failures]


def test_negative_poll_interval_is_a_programming_error(deployed_stack, clients):
    with pytest.raises(ValueError):
        run(deployed_stack, clients, Recorder(), poll_seconds=-1)


# --- ECS's own outcome ----------------------------------------------------------------------------

def rolled_back(stack, records: EcsRecords, service: str) -> DeploymentOutcome:
    """ECS's record of a deployment its alarms rolled back (what DescribeServiceDeployments returns)."""
    name = stack.service_name(service)
    return records.as_ecs_records_it(
        stack.cluster, name, status="ROLLBACK_SUCCESSFUL", alarms_status="TRIGGERED",
        reason="Service deployment rolled back because of CloudWatch alarm(s)",
        triggered_alarms=[f"{name}-5xx"], rollback_reason="CloudWatch alarm(s) triggered")


def test_a_deployment_ecs_rolled_back_fails_and_says_why(deployed_stack, clients):
    records = EcsRecords(clients)
    # After the rollback the service runs the previous task definition again.
    clients.ecs.update_service(cluster=deployed_stack.cluster, service=deployed_stack.service_name("orders"),
                               taskDefinition=deployed_stack.task_definitions["orders"][0])
    records.script(deployed_stack.service_name("orders"), rolled_back(deployed_stack, records, "orders"))

    report = run(deployed_stack, clients, Recorder(), deployments=records)

    assert not report.ok
    assert list(report.rolled_back) == ["orders"]
    assert report.rolled_back["orders"] == (
        "rolled back by ECS (ROLLBACK_SUCCESSFUL: Service deployment rolled back because of CloudWatch alarm(s); "
        "alarms fired: refarch-test-orders-5xx; rollback: CloudWatch alarm(s) triggered)")
    assert [c.name for c in report.failures] == ["ecs outcome: orders"]
    assert report.failures[0].detail.endswith("it runs refarch-test-orders:1")
    # Nothing after it runs: a rolled-back release cannot pass on the old tasks' health.
    assert [c.name for c in report.checks] == EXPECTED_ORDER[:4]


def test_a_service_running_another_task_definition_fails_even_without_an_ecs_record(deployed_stack, clients):
    records = EcsRecords(clients)
    records.script(deployed_stack.service_name("products"), None)  # no service-deployment record at all
    clients.ecs.update_service(cluster=deployed_stack.cluster, service=deployed_stack.service_name("products"),
                               taskDefinition=deployed_stack.task_definitions["products"][0])

    report = run(deployed_stack, clients, Recorder(), deployments=records)

    assert report.rolled_back == {"products": "ECS runs refarch-test-products:1, not refarch-test-products:2, "
                                              "the task definition this release registered"}


def test_a_deployment_still_running_is_waited_for(deployed_stack, clients):
    records = EcsRecords(clients)
    name = deployed_stack.service_name("products")
    done = records.as_ecs_records_it(deployed_stack.cluster, name)
    records.script(name, DeploymentOutcome(arn=done.arn, status="IN_PROGRESS"), done)
    recorder = Recorder()

    report = run(deployed_stack, clients, recorder, deployments=records)

    assert report.ok, report.summary()
    assert records.asked.count(name) == 2 and recorder.sleeps[0] == (0.5, EXPECTED_ORDER[:2])


def test_a_deployment_that_never_ends_fails_within_the_bound(deployed_stack, clients):
    records = EcsRecords(clients)
    name = deployed_stack.service_name("products")
    records.script(name, DeploymentOutcome(arn=f"{name}-deployment", status="IN_PROGRESS",
                                           reason="canary at 10 %"))
    report = run(deployed_stack, clients, Recorder(), deployments=records, stable_timeout=1.0)
    assert [(c.name, c.detail) for c in report.failures] == [
        ("ecs outcome: products", "ECS deployment still IN_PROGRESS: canary at 10 % after the wait")]
    assert report.rolled_back == {}  # not (yet) a rollback: but not a verified release either
    assert not report.ok


def test_an_unchanged_service_is_judged_on_what_runs_and_baked_by_the_pipeline(deployed_stack, clients):
    # This release did not change `orders`: ECS's newest record is of an earlier task definition.
    records = EcsRecords(clients)
    name = deployed_stack.service_name("orders")
    records.script(name, records.as_ecs_records_it(deployed_stack.cluster, name,
                                                   task_definition=deployed_stack.task_definitions["orders"][0]))
    recorder = Recorder()

    report = run(deployed_stack, clients, recorder, deployments=records)

    assert report.ok, report.summary()
    assert report.checks[3].detail.startswith("runs refarch-test-orders:2, this release's; ECS's newest deployment "
                                              "is of refarch-test-orders:1")
    # That old record's window is not this release's: the pipeline watches the alarms itself.
    assert sum(seconds for seconds, _ in recorder.sleeps) == 2


def test_both_target_groups_of_a_traffic_shifting_service_are_checked(deployed_stack, clients):
    entry = deployed_stack.outputs["services"]["products"]
    entry["alternate_target_group_arn"] = alternate = entry["target_group_arn"] + "-alternate"
    # After a blue/green deployment the old group is empty and the alternate one serves.
    targets = Targets({entry["target_group_arn"]: [[TargetState("10.0.0.11", 8080, "draining")]],
                       alternate: [[TargetState("10.0.0.99", 8080, "healthy")]]})
    report = run(deployed_stack, clients, Recorder(), target_health=targets, bake_seconds=0)
    assert report.ok, report.summary()
    assert report.checks[4].detail == "1/1 targets healthy" and alternate in targets.asked


def test_a_short_deployment_ecs_watched_is_watched_out_to_the_alarms_window(deployed_stack, clients):
    # A rolling deployment that began 100 s ago: ECS's own bake may end before an alarm could fire.
    records = EcsRecords(clients)
    for name in ("products", "orders"):
        service = deployed_stack.service_name(name)
        records.script(service, records.as_ecs_records_it(deployed_stack.cluster, service,
                                                          started_at=now() - timedelta(seconds=100)))
    recorder = Recorder()
    report = run(deployed_stack, clients, recorder, deployments=records, poll_seconds=50)
    assert report.ok, report.summary()
    waited = sum(seconds for seconds, _ in recorder.sleeps)
    assert 195 <= waited <= 201, waited  # the rest of the 300 s window
    assert "then for " in report.checks[-1].detail and "s more to cover the 300s window" in report.checks[-1].detail
