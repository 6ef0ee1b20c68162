"""The pipeline's decisions when ECS itself judges the deployment, against the moto server.

The Pulumi adapter is the recording fake; ledger, lock, verification and promotion are the real
modules. ECS's service-deployment records (which moto does not implement) come from `EcsRecords`,
scripted with the endings ECS reports: rolled back on an alarm, rolled back by a failed lifecycle
hook, completed with its alarms unwatched because one was already firing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from ops.delivery import deploy, promote
from ops.delivery.deployments import DeploymentOutcome
from ops.errors import OpsError
from tests.delivery.ecs_records import EcsRecords, now
from tests.delivery.flow_fakes import STACK, World, make_deps, stack_config
from tests.functions.test_smoke_hook import event as hook_event
from tests.functions.test_smoke_hook import load_handler

ROOT = Path(__file__).resolve().parents[2]


def rolled_back(records: EcsRecords, world: World, service: str, reason: str, **extra) -> DeploymentOutcome:
    name = world.deployed.service_name(service)
    return records.as_ecs_records_it(world.deployed.cluster, name, status="ROLLBACK_SUCCESSFUL", reason=reason,
                                     **extra)


def first_release(world: World):
    world.deploy(world.deployed.images)
    return world.ledger().current()


def test_a_deployment_ecs_rolled_back_is_a_failed_release_that_is_never_promoted(clients, deployed_stack, gateway):
    records = EcsRecords(clients)
    world = World(clients, deployed_stack, gateway, config=stack_config(rollback=False), deployments=records)
    good = first_release(world)
    new = world.push_images()
    records.script(deployed_stack.service_name("orders"), rolled_back(
        records, world, "orders", "Service deployment rolled back because of CloudWatch alarm(s)",
        alarms_status="TRIGGERED", triggered_alarms=["refarch-test-service-orders-5xx-rate"]))

    with pytest.raises(OpsError) as failure:
        world.deploy(new)

    assert "ecs outcome: orders: rolled back by ECS (ROLLBACK_SUCCESSFUL" in failure.value.message
    release = world.ledger().history(limit=1)[0]
    assert (release.outcome, release.verified, release.images) == ("failed", False, new)
    assert release.notes[-2].startswith("rolled back by ECS: orders: rolled back by ECS (ROLLBACK_SUCCESSFUL: "
                                        "Service deployment rolled back because of CloudWatch alarm(s); "
                                        "alarms fired: refarch-test-service-orders-5xx-rate)")
    with pytest.raises(OpsError, match=r"is failed: only a verified release is promoted"):
        promote.promotable(world.ledger(), STACK)
    # The last good release is still the one a rollback or a promotion would take.
    assert world.ledger().last_good().id == good.id


def test_after_ecs_rolled_back_the_pipeline_makes_the_stack_say_what_runs_again(clients, deployed_stack, gateway):
    records = EcsRecords(clients)
    world = World(clients, deployed_stack, gateway, deployments=records)
    good = first_release(world)
    new = world.push_images()
    orders = deployed_stack.service_name("orders")
    # ECS rolls `orders` back; the pipeline's rollback release then deploys the good images, which ECS keeps.
    records.script(orders, rolled_back(records, world, "orders", "circuit breaker"),
                   records.as_ecs_records_it(deployed_stack.cluster, orders))

    with pytest.raises(OpsError) as failure:
        world.deploy(new)

    assert f"rolled back to release {good.id}" in failure.value.message and "verified" in failure.value.message
    history = world.ledger().history(limit=2)
    assert [(r.kind, r.outcome, r.verified) for r in history] == [("rollback", "succeeded", True),
                                                                  ("deploy", "failed", False)]
    assert history[0].images == good.images
    assert world.stack.changes()[-2:] == [("set_images", good.images), ("up", None)]


def test_an_alarm_already_firing_before_the_deploy_does_not_fail_a_good_release(clients, deployed_stack, gateway):
    records = EcsRecords(clients)
    config = stack_config()
    config = config.model_copy(update={"delivery": config.delivery.model_copy(update={"bake_seconds": 300})})
    world = World(clients, deployed_stack, gateway, config=config, deployments=records, poll_seconds=30)
    first_release(world)
    # The outage the hotfix is for: its alarm is in ALARM before the hotfix deploys...
    alarm = deployed_stack.outputs["services"]["orders"]["health_alarm_names"][0]
    clients.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx: the bug being fixed")
    hotfix = world.push_images()
    # ...so ECS ignores the deployment's alarms (documented), and the pipeline watches them itself.
    started = now() + timedelta(seconds=1)
    for name in ("products", "orders"):
        service = deployed_stack.service_name(name)
        records.script(service, records.as_ecs_records_it(deployed_stack.cluster, service, alarms_status="DISABLED",
                                                          started_at=started))

    outcome = world.deploy(hotfix)

    assert (outcome.release.outcome, outcome.release.verified, outcome.release.images) == ("succeeded", True, hotfix)
    assert promote.promotable(world.ledger(), STACK).id == outcome.release.id


def test_a_failing_smoke_hook_fails_the_deployment_and_the_release(clients, deployed_stack, gateway, monkeypatch):
    # The hook's own code against the gateway stand-in: the new revision answers 500 on its smoke path.
    monkeypatch.setenv("TEST_HEADER", "X-Refarch-Test-Route")
    monkeypatch.setenv("TEST_ROUTES", json.dumps({"orders": "orders-token"}))
    monkeypatch.setenv("ATTEMPTS", "1")
    gateway.set("/orders/", 500)
    hook = load_handler()
    payload = hook_event(gateway, service="orders", paths=["/orders/", "/health"])
    answer = hook.handler(payload)
    assert answer == {"hookStatus": "FAILED"}
    assert gateway.requests[0] == ("/orders/", gateway.url.removeprefix("http://"))
    # ECS rolls the deployment back on FAILED; its record says so, and the pipeline takes it from there.
    records = EcsRecords(clients)
    world = World(clients, deployed_stack, gateway, config=stack_config(rollback=False), deployments=records)
    gateway.set("/orders/", 200)  # the old revision, back in service, answers
    first_release(world)
    records.script(deployed_stack.service_name("orders"), rolled_back(
        records, world, "orders", f"lifecycle hook at {payload['lifecycleStage']} returned {answer['hookStatus']}"))

    with pytest.raises(OpsError, match="rolled back by ECS"):
        world.deploy(world.push_images())

    release = world.ledger().history(limit=1)[0]
    assert (release.outcome, release.verified) == ("failed", False)
    assert "lifecycle hook at POST_TEST_TRAFFIC_SHIFT returned FAILED" in release.notes[-2]


CHILD = """
import json, sys
from ops.delivery import deploy
from tests.delivery.ecs_records import EcsRecords
from tests.delivery.flow_fakes import STACK, RecordingStack, make_deps, stack_config

outputs, images, cluster = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
config = stack_config()
config = config.model_copy(update={"delivery": config.delivery.model_copy(update={"bake_seconds": 300})})
records = EcsRecords()
for entry in outputs["services"].values():  # an alarm was firing: ECS does not watch, the pipeline bakes
    service = entry["service_name"]
    records.script(service, records.as_ecs_records_it(cluster, service, alarms_status="DISABLED"))
deps = make_deps(stack=RecordingStack(outputs=outputs), configs={STACK: config}, deployments=records,
                 sleep=__import__("time").sleep, poll_seconds=1)
deploy.run(deploy.Request(stack=STACK, images=images, source="test"), deps)
"""


def test_a_runner_that_dies_mid_bake_leaves_the_rollback_to_ecs_and_nothing_promotable(
        clients, deployed_stack, gateway, synths, aws_env, tmp_path):
    # The stack's own ECS service carries what rolls a bad release back with no runner left.
    ecs_service = synths["dev"].one("aws:ecs/service:Service", "services-products-service")["inputs"]
    assert ecs_service["alarms"]["enable"] and ecs_service["alarms"]["rollback"]
    assert ecs_service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    world = World(clients, deployed_stack, gateway, deployments=EcsRecords(clients))
    first_release(world)
    new = world.push_images()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ENDPOINT_URL": aws_env}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(deployed_stack.outputs), json.dumps(new), deployed_stack.cluster],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the last check before the bake has printed itself
            line = child.stderr.readline()
            seen.append(line)
            if "smoke: orders" in line or not line:
                break
        assert any("smoke: orders" in line for line in seen), "".join(seen)
        time.sleep(1)  # into the bake
        assert child.poll() is None, "".join(seen) + child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)  # no finally, no ledger write: the runner is simply gone
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()

    dead = world.ledger().history(limit=1)[0]
    assert (dead.outcome, dead.verified, dead.images) == ("deploying", False, new)
    with pytest.raises(OpsError, match="is still deploying"):
        promote.promotable(world.ledger(), STACK)
    # Meanwhile ECS's own alarms rolled the deployment back: re-verifying the stack says so.
    records = EcsRecords(clients)
    records.script(deployed_stack.service_name("products"), rolled_back(
        records, world, "products", "Service deployment rolled back because of CloudWatch alarm(s)",
        alarms_status="TRIGGERED", triggered_alarms=["refarch-test-service-products-5xx-rate"]))
    deps = make_deps(stack=world.stack, configs={STACK: world.config}, deployments=records)
    with pytest.raises(OpsError, match=r"products: rolled back by ECS \(ROLLBACK_SUCCESSFUL"):
        deploy.verify_stack(STACK, deps=deps)
