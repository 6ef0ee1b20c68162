"""The autoscaling layer: each service's task count follows CPU, memory and requests per task.

Three target-tracking policies on one scalable target: Application Auto Scaling scales out as
soon as any one of them asks, and scales in only when all of them agree, so the busiest
dimension always wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pulumi
import pulumi_aws as aws

from infra.aws.services import DeployedService
from infra.config import ServiceConfig
from infra.tags import with_name

CPU_TARGET = 60.0  # percent: headroom for a burst while new tasks start (~1 min on Fargate)
MEMORY_TARGET = 75.0  # percent: memory does not burst like CPU, but an OOM kill is abrupt
# Requests per task per minute the services are sized for; the one signal that leads load
# instead of trailing it (CPU rises only once requests are already queueing).
REQUESTS_PER_TARGET = 500.0
# Out fast, in slowly: an under-provisioned service hurts users now, while removing tasks on a
# momentary lull only to start them again a minute later costs cold starts and flapping.
SCALE_OUT_COOLDOWN = 60
SCALE_IN_COOLDOWN = 300


Tracking = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs
Metric = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs


class _Gateway(Protocol):
    arn_suffix: pulumi.Output[str]


@dataclass
class AutoscalingArgs:
    services: list[ServiceConfig]
    deployed: dict[str, DeployedService]
    gateway: _Gateway
    tags: dict[str, str]


class Autoscaling(pulumi.ComponentResource):
    targets: dict[str, aws.appautoscaling.Target]

    def __init__(self, name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:autoscaling:Autoscaling", name, None, opts)
        self._name, self._args = name, args
        self.targets = {svc.name: self._scale(svc) for svc in args.services}
        self.register_outputs({"targets": {n: t.resource_id for n, t in self.targets.items()}})

    def _scale(self, svc: ServiceConfig) -> aws.appautoscaling.Target:
        args, base = self._args, f"{self._name}-{svc.name}"
        deployed = args.deployed[svc.name]
        child = pulumi.ResourceOptions(parent=self)
        target = aws.appautoscaling.Target(
            f"{base}-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=deployed.resource_id,
            min_capacity=svc.min_count,
            max_capacity=svc.max_count,
            tags=with_name(args.tags, deployed.service_name),
            opts=child,
        )
        request_label = pulumi.Output.concat(args.gateway.arn_suffix, "/", deployed.target_group_arn_suffix)
        policies: tuple[tuple[str, str, float, pulumi.Output[str] | None], ...] = (
            ("cpu", "ECSServiceAverageCPUUtilization", CPU_TARGET, None),
            ("memory", "ECSServiceAverageMemoryUtilization", MEMORY_TARGET, None),
            ("requests", "ALBRequestCountPerTarget", REQUESTS_PER_TARGET, request_label),
        )
        for short, metric, value, label in policies:
            aws.appautoscaling.Policy(
                f"{base}-{short}",
                name=pulumi.Output.concat(deployed.service_name, f"-{short}"),
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration=Tracking(
                    target_value=value,
                    predefined_metric_specification=Metric(predefined_metric_type=metric, resource_label=label),
                    scale_out_cooldown=SCALE_OUT_COOLDOWN,
                    scale_in_cooldown=SCALE_IN_COOLDOWN,
                ),
                opts=child,
            )
        return target
