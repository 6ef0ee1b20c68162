"""The autoscaling layer alone: stand-in deployed services and gateway, one synth per case."""

from __future__ import annotations

import types

import pulumi
import pytest

from infra.aws.autoscaling import (
    CPU_TARGET,
    MEMORY_TARGET,
    REQUESTS_PER_TARGET,
    Autoscaling,
    AutoscalingArgs,
)
from infra.aws.services import DeployedService
from infra.config import StackConfig, parse
from infra.tags import base_tags
from ops import stackfile
from ops.mocks import has_property
from ops.synth import Synth, run

ALB_SUFFIX = "app/refarch-alb/0123456789abcdef"
POLICY = "aws:appautoscaling/policy:Policy"
TARGET = "aws:appautoscaling/target:Target"


def config(stack: str, **sections: object) -> StackConfig:
    values = stackfile.read_values(stack)
    values.update({f"refarch:{key}": value for key, value in sections.items()})
    return parse(values, stack, f"stacks/Pulumi.{stack}.yaml")


def tg_suffix(svc: str) -> str:
    return f"targetgroup/refarch-{svc}-tg/0123456789abcdef"


def synth_autoscaling(cfg: StackConfig, stack: str) -> Synth:
    def build(c: StackConfig) -> None:
        out = pulumi.Output.from_input
        deployed = {
            svc.name: DeployedService(
                name=svc.name, service_name=out(f"refarch-{stack}-{svc.name}"), service_arn=out("arn"),
                target_group_arn=out("arn"), target_group_arn_suffix=out(tg_suffix(svc.name)),
                repository_url=out(""), security_group_id=out("sg-0"), task_definition_arn=out("arn"),
                log_group_name=out(f"/ecs/refarch-{stack}/{svc.name}"),
                resource_id=out(f"service/refarch-{stack}/refarch-{stack}-{svc.name}"),
                migration_task_definition_arn=None, migration_task_definition_urn=None)
            for svc in c.services
        }
        Autoscaling("autoscaling", AutoscalingArgs(
            services=c.services, deployed=deployed,
            gateway=types.SimpleNamespace(arn_suffix=out(ALB_SUFFIX)),
            tags=base_tags("refarch", stack, c.environment),
        ))

    return run(cfg, stack, build=build)


TWO_SERVICES = [
    {"name": "products", "build": "services/products", "routes": [{"path": "/products*"}],
     "min_count": 1, "desired_count": 2, "max_count": 6},  # min below desired: the target takes min
    {"name": "web", "image": "nginx:1.27", "routes": [{"path": "/*", "host": "www.example.com"}],
     "min_count": 1, "desired_count": 1, "max_count": 3},
]


@pytest.fixture(scope="module")
def synths() -> dict[str, tuple[StackConfig, Synth]]:
    cases = {"dev": (config("dev"), "dev"), "prod": (config("prod"), "prod"),
             "two": (config("staging", services=TWO_SERVICES), "staging")}
    return {case: (cfg, synth_autoscaling(cfg, stack)) for case, (cfg, stack) in cases.items()}


def policies_of(synth: Synth, resource_id: str) -> dict[str, dict]:
    found = {}
    for p in synth.of_type(POLICY):
        if p["inputs"]["resourceId"] == resource_id:
            config = p["inputs"]["targetTrackingScalingPolicyConfiguration"]
            found[config["predefinedMetricSpecification"]["predefinedMetricType"]] = p["inputs"]
    return found


@pytest.mark.parametrize("case", ["dev", "prod", "two"])
def test_each_service_scales_its_desired_count_between_the_configured_bounds(synths, case):
    cfg, synth = synths[case]
    targets = {t["inputs"]["resourceId"]: t["inputs"] for t in synth.of_type(TARGET)}
    assert len(targets) == len(cfg.services)
    for svc in cfg.services:
        target = targets[f"service/refarch-{synth.stack}/refarch-{synth.stack}-{svc.name}"]
        assert (target["serviceNamespace"], target["scalableDimension"]) == ("ecs", "ecs:service:DesiredCount")
        assert (target["minCapacity"], target["maxCapacity"]) == (svc.min_count, svc.max_count)


def test_shipped_bounds_are_what_the_stack_files_say(synths):
    bounds = {case: {(t["inputs"]["minCapacity"], t["inputs"]["maxCapacity"]) for t in synths[case][1].of_type(TARGET)}
              for case in ("dev", "prod")}
    assert bounds == {"dev": {(1, 2)}, "prod": {(3, 12)}}


@pytest.mark.parametrize("case", ["dev", "prod", "two"])
def test_three_target_tracking_policies_per_service(synths, case):
    cfg, synth = synths[case]
    assert len(synth.of_type(POLICY)) == 3 * len(cfg.services)
    for svc in cfg.services:
        resource_id = f"service/refarch-{synth.stack}/refarch-{synth.stack}-{svc.name}"
        found = policies_of(synth, resource_id)
        assert set(found) == {"ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization",
                              "ALBRequestCountPerTarget"}
        for metric, policy in found.items():
            assert policy["policyType"] == "TargetTrackingScaling"
            assert (policy["serviceNamespace"], policy["scalableDimension"]) == ("ecs", "ecs:service:DesiredCount")
            assert policy["name"].startswith(f"refarch-{synth.stack}-{svc.name}-")
            tracking = policy["targetTrackingScalingPolicyConfiguration"]
            assert (tracking["scaleOutCooldown"], tracking["scaleInCooldown"]) == (60, 300), metric
        values = {m: p["targetTrackingScalingPolicyConfiguration"]["targetValue"] for m, p in found.items()}
        assert values == {"ECSServiceAverageCPUUtilization": CPU_TARGET,
                          "ECSServiceAverageMemoryUtilization": MEMORY_TARGET,
                          "ALBRequestCountPerTarget": REQUESTS_PER_TARGET}


def test_request_policy_reads_the_services_own_target_group_behind_the_alb(synths):
    _, synth = synths["two"]
    for svc in ("products", "web"):
        policy = policies_of(synth, f"service/refarch-staging/refarch-staging-{svc}")["ALBRequestCountPerTarget"]
        spec = policy["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"]
        # CloudWatch's format: app/<alb>/<id>/targetgroup/<tg>/<id>.
        assert spec["resourceLabel"] == f"{ALB_SUFFIX}/{tg_suffix(svc)}"
    cpu = policies_of(synth, "service/refarch-staging/refarch-staging-web")["ECSServiceAverageCPUUtilization"]
    assert "resourceLabel" not in cpu["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"]


def test_targets_are_tagged(synths):
    for case, (_, synth) in synths.items():
        for r in synth.resources:
            if has_property(r["type"], "tags"):
                assert {"project", "stack", "environment", "managed-by"} <= set(r["inputs"]["tags"]), (case, r["name"])
