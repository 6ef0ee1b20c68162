"""What ECS's own progressive deployments need around a service, and the smoke-test hook.

For `canary`, `linear` and `blue_green` (ECS deployment controller, 2025 strategies), per service:
- an alternate target group, configured like the primary one: ECS registers the new revision there;
- one production listener rule forwarding to both groups by weight (100/0 at creation); ECS moves
  the weights as it shifts traffic, and swaps which group is "primary" at every deployment;
- one test listener rule, evaluated first, matching the service's paths plus a per-service value of
  the `X-Refarch-Test-Route` header: ECS points it at the new revision before production traffic;
- the infrastructure role ECS assumes to do that, allowed exactly those target groups and rules.

Per stack, when any service bakes with the smoke hook: the Lambda in `functions/smoke_hook/`, its
role (writes its own log group, nothing else), and the role ECS assumes to invoke it.

What ECS changes is never reset by the program (no drift fight): the rules ignore their forward
weights, and the service ignores the primary/alternate target-group pair ECS swaps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import DeploymentConfig, ServiceConfig, naming
from infra.config.deployment import TEST_HEADER
from infra.tags import with_name

ROOT = Path(__file__).resolve().parents[2]
HOOK_SOURCE = ROOT / "functions" / "smoke_hook" / "handler.py"
HOOK_HANDLER = "handler.handler"
HOOK_RUNTIME = "python3.13"
# After the test rule points at the new revision, before any production traffic shifts to it.
SMOKE_STAGE = "POST_TEST_TRAFFIC_SHIFT"
# Test rules come before every production rule (those start at 100): 1 + service index.
TEST_RULE_PRIORITY_BASE = 1
# Pulumi paths of what ECS owns after the first deployment.
ECS_MANAGED_RULE_FIELDS = ["actions[*].forward.targetGroups[*].weight"]
# Only the pair ECS swaps, not the whole block: a stack switching from `rolling` has no old
# advancedConfiguration, so the new one is applied (ignored paths take the old value only where
# one exists).
ECS_MANAGED_SERVICE_FIELDS = ["loadBalancers[*].targetGroupArn",
                              "loadBalancers[*].advancedConfiguration.alternateTargetGroupArn"]
ECS_STRATEGIES = {"rolling": "ROLLING", "canary": "CANARY", "linear": "LINEAR", "blue_green": "BLUE_GREEN"}
HOOK_ATTEMPTS = 3  # the smoke hook retries a failed check this often before failing the deployment
HOOK_RETRY_SECONDS = 15
# One update of a progressive deployment ends after scale-up, the hook and every bake; the
# provider's default 20 minute wait would give up on a healthy canary before ECS finishes it.
SERVICE_TIMEOUT_MARGIN_MINUTES = 20


def ecs_deployment_configuration(cfg: DeploymentConfig, hook: SmokeHook | None,
                                 details: pulumi.Input[str] | None) -> aws.ecs.ServiceDeploymentConfigurationArgs:
    """The service's `deployment_configuration`: strategy, bakes, and the smoke hook."""
    if cfg.rolling:
        # ECS derives a rolling deployment's bake from its alarms (the longest evaluation); the
        # provider documents bake_time_in_minutes for the traffic-shifting strategies only.
        return aws.ecs.ServiceDeploymentConfigurationArgs(strategy=ECS_STRATEGIES["rolling"])
    hooks = None
    if hook is not None and cfg.smoke_hook:
        hooks = [aws.ecs.ServiceDeploymentConfigurationLifecycleHookArgs(
            lifecycle_stages=[SMOKE_STAGE], target_type="AWS_LAMBDA",
            hook_target_arn=hook.function_arn, role_arn=hook.invoke_role_arn, hook_details=details)]
    return aws.ecs.ServiceDeploymentConfigurationArgs(
        strategy=ECS_STRATEGIES[cfg.strategy],
        # The provider types every bake as a string of minutes.
        bake_time_in_minutes=str(cfg.bake_minutes),
        canary_configuration=aws.ecs.ServiceDeploymentConfigurationCanaryConfigurationArgs(
            canary_percent=cfg.canary_percent, canary_bake_time_in_minutes=str(cfg.canary_bake_minutes),
        ) if cfg.strategy == "canary" else None,
        linear_configuration=aws.ecs.ServiceDeploymentConfigurationLinearConfigurationArgs(
            step_percent=cfg.linear_step_percent, step_bake_time_in_minutes=str(cfg.linear_step_bake_minutes),
        ) if cfg.strategy == "linear" else None,
        lifecycle_hooks=hooks,
    )


def service_timeout(cfg: DeploymentConfig) -> pulumi.CustomTimeouts:
    minutes = cfg.total_bake_minutes + SERVICE_TIMEOUT_MARGIN_MINUTES
    return pulumi.CustomTimeouts(create=f"{minutes}m", update=f"{minutes}m")


def hook_details(svc: ServiceConfig, gateway_url: pulumi.Input[str], timeout: int) -> pulumi.Output[str]:
    """What ECS passes to the smoke hook for this service (`hookDetails` in its event)."""
    paths = list(dict.fromkeys([svc.smoke_url_path, svc.health_check.path]))
    host = svc.routes[0].host
    return pulumi.Output.json_dumps({
        "service": svc.name, "url": gateway_url, "paths": paths, "timeoutSeconds": timeout,
        **({"host": host} if host else {}),
    })


def test_route_value(service: str, token: pulumi.Input[str]) -> pulumi.Output[str]:
    """The header value that reaches `service`'s test rule: a per-stack secret, per service."""
    return pulumi.Output.concat(service, "-", token)


def infrastructure_policy(target_group_arns: Sequence[str], listener_arn: str, rule_arns: Sequence[str]) -> dict[str, Any]:
    """AmazonECSInfrastructureRolePolicyForLoadBalancers cut down to one service's groups and rules."""
    return {"Version": "2012-10-17", "Statement": [
        # Describe* has no resource-level permissions: "*" is the only form.
        {"Sid": "ReadLoadBalancing", "Effect": "Allow", "Resource": "*", "Action": [
            "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeRules",
            "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth"]},
        {"Sid": "RegisterOwnTasks", "Effect": "Allow", "Resource": sorted(target_group_arns),
         "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"]},
        {"Sid": "ShiftOwnRules", "Effect": "Allow", "Resource": sorted(rule_arns),
         "Action": "elasticloadbalancing:ModifyRule"},
        {"Sid": "ModifyOwnListener", "Effect": "Allow", "Resource": listener_arn,
         "Action": "elasticloadbalancing:ModifyListener"},
    ]}


def ecs_trust_policy() -> dict[str, Any]:
    # The trust policy AWS documents for ECS infrastructure and lifecycle-hook roles. No
    # SourceAccount/SourceArn condition: ECS documents none for them, and a role is only ever
    # used by ECS on behalf of the account that passed it (iam:PassRole is never cross-account).
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@dataclass
class TrafficShift:
    """One service's pair of target groups, its two ECS-managed rules and ECS's role for them."""

    alternate: aws.lb.TargetGroup
    production_rule: aws.lb.ListenerRule
    test_rule: aws.lb.ListenerRule
    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    rules: list[aws.lb.ListenerRule] = field(default_factory=list)

    def load_balancer(self, target_group_arn: pulumi.Input[str], container: str, port: int) -> aws.ecs.ServiceLoadBalancerArgs:
        return aws.ecs.ServiceLoadBalancerArgs(
            target_group_arn=target_group_arn, container_name=container, container_port=port,
            advanced_configuration=aws.ecs.ServiceLoadBalancerAdvancedConfigurationArgs(
                alternate_target_group_arn=self.alternate.arn,
                production_listener_rule=self.production_rule.arn,
                test_listener_rule=self.test_rule.arn,
                role_arn=self.role.arn,
            ))

    @property
    def resources(self) -> list[pulumi.Resource]:
        """What must exist before the service's first deployment can shift anything."""
        return [self.production_rule, self.test_rule, self.policy]


def traffic_shift(parent: pulumi.Resource, base: str, full: str, svc: ServiceConfig, *,
                  primary: aws.lb.TargetGroup, alternate: aws.lb.TargetGroup, listener_arn: pulumi.Input[str],
                  priority: int, test_priority: int, token: pulumi.Input[str], tags: dict[str, str],
                  permissions_boundary_arn: pulumi.Input[str] | None = None) -> TrafficShift:
    child = pulumi.ResourceOptions(parent=parent, ignore_changes=ECS_MANAGED_RULE_FIELDS)
    host = svc.routes[0].host  # the config guarantees one host (or none) for these strategies
    paths = [route.path for route in svc.routes]
    production = aws.lb.ListenerRule(
        f"{base}-rule-0",  # the name rule 0 has under `rolling`: switching strategy updates it in place
        listener_arn=listener_arn,
        priority=priority,
        actions=[_weighted(primary, alternate)],
        conditions=_conditions(paths, host),
        tags=with_name(tags, f"{full}-production"),
        opts=child,
    )
    test_paths = list(dict.fromkeys([*paths, svc.health_check.path]))
    test = aws.lb.ListenerRule(
        f"{base}-rule-test",
        listener_arn=listener_arn,
        priority=test_priority,
        actions=[_weighted(primary, alternate)],
        conditions=_conditions(test_paths, host) + [aws.lb.ListenerRuleConditionArgs(
            http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                http_header_name=TEST_HEADER, values=[test_route_value(svc.name, token)]))],
        tags=with_name(tags, f"{full}-test"),
        opts=child,
    )
    role = aws.iam.Role(
        f"{base}-traffic-role",
        name=f"{full}-traffic",
        description=f"ECS shifts {svc.name} traffic between its two target groups",
        assume_role_policy=json.dumps(ecs_trust_policy()),
        permissions_boundary=permissions_boundary_arn,
        tags=with_name(tags, f"{full}-traffic"),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    document = pulumi.Output.all(primary.arn, alternate.arn, listener_arn, production.arn, test.arn).apply(
        lambda v: json.dumps(infrastructure_policy([v[0], v[1]], v[2], [v[3], v[4]])))
    policy = aws.iam.RolePolicy(f"{base}-traffic-policy", role=role.id, name="shift-traffic", policy=document,
                                opts=pulumi.ResourceOptions(parent=parent))
    return TrafficShift(alternate=alternate, production_rule=production, test_rule=test, role=role,
                        policy=policy, rules=[production, test])


def _weighted(primary: aws.lb.TargetGroup, alternate: aws.lb.TargetGroup) -> aws.lb.ListenerRuleActionArgs:
    return aws.lb.ListenerRuleActionArgs(type="forward", forward=aws.lb.ListenerRuleActionForwardArgs(
        target_groups=[aws.lb.ListenerRuleActionForwardTargetGroupArgs(arn=primary.arn, weight=100),
                       aws.lb.ListenerRuleActionForwardTargetGroupArgs(arn=alternate.arn, weight=0)]))


def _conditions(paths: list[str], host: str | None) -> list[aws.lb.ListenerRuleConditionArgs]:
    # One match type per condition (the provider's rule); all conditions must match.
    conditions = [aws.lb.ListenerRuleConditionArgs(
        path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=paths))]
    if host:
        conditions.append(aws.lb.ListenerRuleConditionArgs(
            host_header=aws.lb.ListenerRuleConditionHostHeaderArgs(values=[host])))
    return conditions


# --- the smoke hook ------------------------------------------------------------------------------

@dataclass
class SmokeHookArgs:
    name_prefix: str
    log_retention_days: int
    test_routes: dict[str, pulumi.Input[str]]  # service -> its test-rule header value
    timeout_seconds: int  # per request
    paths_per_service: int
    tags: dict[str, str]
    kms_key_arn: pulumi.Input[str] | None = None
    permissions_boundary_arn: pulumi.Input[str] | None = None


class SmokeHook(pulumi.ComponentResource):
    """The Lambda ECS runs at POST_TEST_TRAFFIC_SHIFT, and the two roles around it."""

    function_arn: pulumi.Output[str]
    invoke_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: SmokeHookArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:services:SmokeHook", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        function_name = naming.smoke_hook_function(args.name_prefix)
        tags = args.tags
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/aws/lambda/{function_name}", retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn, tags=with_name(tags, f"/aws/lambda/{function_name}"), opts=child)
        role = aws.iam.Role(
            f"{name}-role", name=f"{function_name}",
            description="The smoke hook: writes its own log group and nothing else",
            assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            permissions_boundary=args.permissions_boundary_arn, tags=with_name(tags, function_name), opts=child)
        # No VPC: the hook reaches the internet-facing gateway like any client, and has no AWS API
        # to call, so its role holds nothing but its own log stream.
        logs = aws.iam.RolePolicy(
            f"{name}-logs-policy", role=role.id, name="write-own-logs",
            policy=log_group.arn.apply(lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [{
                "Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"{arn}:*"}]})),
            opts=child)
        function = aws.lambda_.Function(
            f"{name}-function",
            name=function_name,
            description="ECS lifecycle hook: GETs a new revision's smoke and health paths through the test rule",
            role=role.arn,
            runtime=HOOK_RUNTIME,
            architectures=["arm64"],
            handler=HOOK_HANDLER,
            code=pulumi.AssetArchive({"handler.py": pulumi.FileAsset(str(HOOK_SOURCE))}),
            # Every path once per invocation; retries are ECS's, between invocations.
            timeout=args.paths_per_service * args.timeout_seconds + 10,
            memory_size=128,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={
                "TEST_HEADER": TEST_HEADER,
                "TEST_ROUTES": pulumi.Output.json_dumps(args.test_routes),
                "ATTEMPTS": str(HOOK_ATTEMPTS),
                "RETRY_SECONDS": str(HOOK_RETRY_SECONDS),
            }),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="Text", log_group=log_group.name),
            tags=with_name(tags, function_name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs]),
        )
        invoke = aws.iam.Role(
            f"{name}-invoke-role", name=f"{function_name}-invoke",
            description="ECS invokes the smoke hook during deployments",
            assume_role_policy=json.dumps(ecs_trust_policy()),
            permissions_boundary=args.permissions_boundary_arn,
            tags=with_name(tags, f"{function_name}-invoke"), opts=child)
        invoke_policy = aws.iam.RolePolicy(
            f"{name}-invoke-policy", role=invoke.id, name="invoke-smoke-hook",
            policy=function.arn.apply(lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [{
                "Sid": "InvokeSmokeHook", "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn}]})),
            opts=child)
        self.function_arn = function.arn
        # The role is usable once its policy exists: hand out the ARN only then.
        self.invoke_role_arn = pulumi.Output.all(invoke.arn, invoke_policy.id).apply(lambda v: v[0])
        self.register_outputs({"function_arn": self.function_arn, "invoke_role_arn": self.invoke_role_arn})
