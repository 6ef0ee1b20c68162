"""Verification against a real moto server and a real local HTTP gateway.

moto always reports targets healthy, so unhealthy ones come through the TargetHealth seam; alarms
are moved with moto's real `set_alarm_state`; the ECS waiter runs against moto's services.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ops.delivery.verify import Check, TargetState, verify

EXPECTED_ORDER = [
    "ecs stable: products", "ecs stable: orders",
    "targets healthy: products", "targets healthy: orders",
    "smoke: products", "smoke: orders",
    "alarms: bake",
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
                   sleep=recorder.sleep, poll_seconds=0.5, stable_timeout=1.0)
    options.update(overrides)
    return verify(clients, stack.outputs, **options)


def test_healthy_stack_passes_every_check_reported_live_in_order(deployed_stack, clients, gateway):
    recorder = Recorder()
    report = run(deployed_stack, clients, recorder)

    assert report.ok, report.summary()
    assert [c.name for c in report.checks] == EXPECTED_ORDER
    assert recorder.checks == report.checks
    # Live: the six earlier checks had been reported before the bake's first sleep began.
    assert recorder.sleeps[0][1] == EXPECTED_ORDER[:6]
    # The bake polled across its whole window: 2 s in 0.5 s steps.
    assert [seconds for seconds, _ in recorder.sleeps] == [0.5, 0.5, 0.5, 0.5]
    assert report.checks[-1].detail.startswith("5 health alarms out of ALARM for 2s")
    # The real targets moto registered were read through the default (ELB) seam.
    assert report.checks[2].detail == "2/2 targets healthy"
    # Each smoke check really went through the gateway, on the service's route.
    assert sorted(path for path, _ in gateway.requests) == ["/orders/", "/products/"]


def test_alarm_going_off_during_the_bake_fails_fast_and_names_it(deployed_stack, clients):
    alarm = deployed_stack.outputs["services"]["orders"]["health_alarm_names"][0]
    recorder = Recorder(during_sleep=[lambda: clients.cloudwatch.set_alarm_state(
        AlarmName=alarm, StateValue="ALARM", StateReason="Threshold Crossed: 9 5xx in 1 minute")])

    report = run(deployed_stack, clients, recorder, bake_seconds=60)

    assert not report.ok
    failed = report.failures
    assert [c.name for c in failed] == ["alarms: bake"]
    assert failed[0].detail.startswith(f"{alarm} in ALARM: Threshold Crossed: 9 5xx in 1 minute")
    assert len(recorder.sleeps) == 1, "must stop at the first ALARM, not sit out the 60 s window"


def test_alarm_already_firing_fails_before_any_bake(deployed_stack, clients):
    alarm = deployed_stack.outputs["health_alarm_names"][0]
    clients.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx")
    recorder = Recorder()
    report = run(deployed_stack, clients, recorder)
    assert report.failures[0].detail.startswith(f"{alarm} in ALARM: 5xx (0s into")
    assert recorder.sleeps == []


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
    assert [c.name for c in report.checks] == EXPECTED_ORDER[:4]


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
    assert report.checks[3].detail == "1/1 targets healthy"


def test_target_group_without_targets_fails(deployed_stack, clients):
    arn = deployed_stack.outputs["services"]["orders"]["target_group_arn"]
    report = run(deployed_stack, clients, Recorder(), target_health=Targets({arn: [[]]}))
    assert report.failures[0].detail == "no registered targets: nothing serves this service"


def test_smoke_500_from_the_gateway_fails_and_names_the_service(deployed_stack, clients, gateway):
    gateway.set("/orders/", 500)
    report = run(deployed_stack, clients, Recorder())
    assert [c.name for c in report.failures] == ["smoke: orders"]
    assert report.failures[0].detail.startswith(f"GET {gateway.url}/orders/ -> 500 in ")
    assert "alarms: bake" not in [c.name for c in report.checks]


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
