"""Feature flags: the stack's AWS AppConfig application, environment, feature-flag profile, rollout
strategy and first deployment, and each service task role's right to read only that profile.

AppConfig rolls a flag change back by itself when an environment monitor alarms during the
deployment. An environment holds at most 5 monitors and a service has more health alarms than
that, so the monitor is one composite alarm, in ALARM when any service's health alarm is.

The services layer runs before this one (the health alarms watch its services), so the task
definitions address the profile by name (the agent accepts names), and the read permission,
which IAM states with the ids, is attached here to the task roles the services layer made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.service_policies import flags_read_policy
from infra.config.flags import FlagsConfig
from infra.tags import with_name

PROFILE_NAME = "flags"
FEATURE_FLAGS = "AWS.AppConfig.FeatureFlags"
AGENT_PORT = 2772  # the AppConfig agent's default HTTP port


@dataclass(frozen=True)
class FlagNames:
    """The names a task uses to address its flags: fixed by the stack, known before any resource."""

    application: str
    environment: str
    profile: str = PROFILE_NAME
    # Each declared flag's default as JSON: what the service serves when the agent cannot answer.
    defaults: str = "{}"

    @property
    def path(self) -> str:
        """The agent's path of the profile (also the PREFETCH_LIST entry)."""
        return f"/applications/{self.application}/environments/{self.environment}/configurations/{self.profile}"

    @property
    def url(self) -> str:
        return f"http://localhost:{AGENT_PORT}{self.path}"


def flag_names(name_prefix: str, environment: str, config: FlagsConfig | None = None) -> FlagNames:
    defaults = {flag.name: flag.default for flag in config.declared} if config else {}
    return FlagNames(application=name_prefix, environment=environment, defaults=json.dumps(defaults, sort_keys=True))


def configuration_arn(partition: str, region: str, account: str, application_id: str, environment_id: str,
                      profile_id: str) -> str:
    """The ARN StartConfigurationSession and GetLatestConfiguration are authorised on."""
    return (f"arn:{partition}:appconfig:{region}:{account}:application/{application_id}"
            f"/environment/{environment_id}/configuration/{profile_id}")


def monitor_trust_policy(account: str) -> dict[str, Any]:
    # aws:SourceAccount: only this account's AppConfig may assume it (confused deputy).
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "appconfig.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]}


def monitor_policy(alarm_arn: str) -> dict[str, Any]:
    """What AppConfig needs to watch the environment's monitor: DescribeAlarms on that alarm only."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "DescribeFlagMonitor", "Effect": "Allow", "Action": "cloudwatch:DescribeAlarms", "Resource": alarm_arn}]}


def any_alarm_rule(alarm_names: list[str]) -> str:
    return " OR ".join(f'ALARM("{name}")' for name in alarm_names)


@dataclass
class FlagsArgs:
    config: FlagsConfig
    environment: str
    name_prefix: str
    region: str
    # Every service's health alarms (the monitoring layer's output) and each service's task role.
    health_alarm_names: pulumi.Input[list[str]]
    task_role_names: dict[str, pulumi.Input[str]]
    tags: dict[str, str]
    permissions_boundary_arn: pulumi.Input[str] | None = None


class Flags(pulumi.ComponentResource):
    application_id: pulumi.Output[str]
    environment_id: pulumi.Output[str]
    profile_id: pulumi.Output[str]
    strategy_id: pulumi.Output[str]

    def __init__(self, name: str, args: FlagsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:flags:Flags", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix, names = args.name_prefix, flag_names(args.name_prefix, args.environment)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition

        monitor = aws.cloudwatch.CompositeAlarm(
            f"{name}-monitor",
            alarm_name=f"{prefix}-flags-health",
            alarm_description="Any service health alarm: AppConfig rolls a flag deployment back on it",
            alarm_rule=pulumi.Output.from_input(args.health_alarm_names).apply(any_alarm_rule),
            # A gate for AppConfig, not a page: the alarms it combines already notify.
            actions_enabled=False,
            tags=with_name(args.tags, f"{prefix}-flags-health"),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-monitor-role",
            name=f"{prefix}-flags-monitor",
            description="AppConfig reads the flag deployment monitor alarm",
            assume_role_policy=account.apply(lambda a: json.dumps(monitor_trust_policy(a))),
            permissions_boundary=args.permissions_boundary_arn,
            tags=with_name(args.tags, f"{prefix}-flags-monitor"),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-monitor-policy", role=role.id, name="describe-monitor",
            policy=monitor.arn.apply(lambda arn: json.dumps(monitor_policy(arn))), opts=child)

        application = aws.appconfig.Application(
            f"{name}-application", name=names.application,
            description=f"Feature flags of {prefix}", tags=with_name(args.tags, names.application), opts=child)
        environment = aws.appconfig.Environment(
            f"{name}-environment", application_id=application.id, name=names.environment,
            description=f"{prefix}: flag changes roll back when a service health alarm fires",
            monitors=[aws.appconfig.EnvironmentMonitorArgs(alarm_arn=monitor.arn, alarm_role_arn=role.arn)],
            tags=with_name(args.tags, f"{prefix}-{names.environment}"),
            # The role's policy must exist before AppConfig first reads the alarm.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        profile = aws.appconfig.ConfigurationProfile(
            f"{name}-profile", application_id=application.id, name=names.profile, location_uri="hosted",
            type=FEATURE_FLAGS, description="The flags declared in the stack file (refarch:flags)",
            tags=with_name(args.tags, f"{prefix}-{names.profile}"), opts=child)
        version = aws.appconfig.HostedConfigurationVersion(
            f"{name}-version", application_id=application.id,
            configuration_profile_id=profile.configuration_profile_id,
            content=json.dumps(args.config.content(), sort_keys=True), content_type="application/json",
            description="The declared defaults", opts=child)
        strategy = aws.appconfig.DeploymentStrategy(
            f"{name}-strategy", name=f"{prefix}-flags",
            description=f"{args.config.rollout.growth} flag rollout of {prefix}",
            replicate_to="NONE", **args.config.rollout.strategy(),
            tags=with_name(args.tags, f"{prefix}-flags"), opts=child)
        aws.appconfig.Deployment(
            f"{name}-deployment", application_id=application.id, environment_id=environment.environment_id,
            configuration_profile_id=profile.configuration_profile_id,
            configuration_version=version.version_number.apply(str),
            deployment_strategy_id=strategy.id, description="The declared defaults",
            tags=with_name(args.tags, f"{prefix}-flags"), opts=child)

        arn = pulumi.Output.all(partition, account, application.id, environment.environment_id,
                                profile.configuration_profile_id).apply(
            lambda v: configuration_arn(v[0], args.region, v[1], v[2], v[3], v[4]))
        self.read_policies = [
            aws.iam.RolePolicy(f"{name}-{svc}-read", role=role_name, name="read-own-flags",
                               policy=arn.apply(lambda a: json.dumps(flags_read_policy(a))), opts=child)
            for svc, role_name in sorted(args.task_role_names.items())
        ]

        self.application_id = application.id
        self.environment_id = environment.environment_id
        self.profile_id = profile.configuration_profile_id
        self.strategy_id = strategy.id
        self.register_outputs({"application_id": self.application_id, "environment_id": self.environment_id,
                               "profile_id": self.profile_id, "strategy_id": self.strategy_id})
