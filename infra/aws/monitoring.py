"""The monitoring layer: alarms on every layer, one encrypted alert topic, one dashboard.

Each service's HEALTH alarms (`health_alarm_names[svc]`) evaluate one-minute periods so that a bad
deploy shows within minutes; four of them are its DEPLOYMENT alarms (`deployment_alarm_names`),
which the ECS service itself carries: ECS rolls a deployment back when one of them fires, with or
without the pipeline that started it. They judge the service on both of its target groups (a
traffic-shifting strategy alternates between two), each group on its own error rate, so a canary
on 10 % of the traffic that fails every request is caught as 100 %, not diluted to 10 %. The
gateway, database and cache alarms look at longer periods: they page people, they gate nothing.

Every alarm rule (infra/aws/alarm_rules.py) states its `treat_missing_data` next to its definition, because silence means
different things for different metrics: no requests is not an error, but no running tasks is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from infra.aws.alarm_rules import (
    Rule,
    analytics_rules,
    cache_rules,
    database_rules,
    gateway_rules,
    service_rules,
)
from infra.aws.dashboard import widgets
from infra.config import MonitoringConfig, ServiceConfig
from infra.tags import with_name

if TYPE_CHECKING:  # the layers below are only read, never constructed here
    from infra.aws.analytics import Analytics
    from infra.aws.cache import Cache
    from infra.aws.database import Database
    from infra.aws.gateway import Gateway
    from infra.aws.services import DeployedService

# The alarms ECS rolls a deployment back on, by rule name; the last one depends on Container Insights.
TRAFFIC_RULES = ("5xx-rate", "p99-latency", "unhealthy-hosts")
DEPLOYMENT_EVENTS = "ECS Deployment State Change"  # the EventBridge detail-type ECS sends them with


def deployment_alarm_names(prefix: str, service: str, container_insights: bool) -> list[str]:
    """The names of a service's deployment alarms, known before they exist.

    The ECS service carries these names and is created before this layer (the alarms need the
    service's name and target groups), so both sides derive them here; ECS accepts alarm names
    that exist only later, as CDK's `enableDeploymentAlarms` pattern relies on.
    """
    tasks = "tasks-below-desired" if container_insights else "no-healthy-hosts"
    return [f"{prefix}-service-{service}-{what}" for what in (*TRAFFIC_RULES, tasks)]


@dataclass
class MonitoringArgs:
    config: MonitoringConfig
    services: list[ServiceConfig]
    name_prefix: str
    region: str
    kms_key_arn: pulumi.Input[str]
    gateway: Gateway
    deployed: dict[str, DeployedService]
    cluster_name: pulumi.Output[str]
    database: Database
    cache: Cache
    tags: dict[str, str]
    analytics: Analytics | None = None


class Monitoring(pulumi.ComponentResource):
    alert_topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]
    health_alarm_names: dict[str, pulumi.Output[list[str]]]
    all_health_alarm_names: pulumi.Output[list[str]]
    deployment_alarm_names: dict[str, pulumi.Output[list[str]]]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:monitoring:Monitoring", name, None, opts)
        self._name, self._args = name, args
        prefix = args.name_prefix
        child = pulumi.ResourceOptions(parent=self)

        self.topic = aws.sns.Topic(
            f"{name}-alerts",
            name=f"{prefix}-alerts",
            kms_master_key_id=args.kms_key_arn,
            tags=with_name(args.tags, f"{prefix}-alerts"),
            opts=child,
        )
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self)).account_id
        self.topic_policy = aws.sns.TopicPolicy(
            f"{name}-alerts-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, account).apply(
                lambda v: json.dumps(_topic_policy(v[0], v[1], args.region, prefix))
            ),
            opts=child,
        )
        # Each address gets a confirmation mail; until it is confirmed nothing is delivered to it.
        for email in args.config.alert_emails:
            aws.sns.TopicSubscription(
                f"{name}-email-{_slug(email)}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )

        self.alarms: list[aws.cloudwatch.MetricAlarm] = []
        for rule in gateway_rules(self._args):
            self._alarm("gateway", rule)

        self.health_alarm_names, self.deployment_alarm_names = {}, {}
        for svc in args.services:
            scope = f"service-{svc.name}"  # never collides with the gateway/database/cache scopes
            rules = service_rules(self._args, svc)
            made = [self._alarm(scope, rule) for rule in rules]
            self.health_alarm_names[svc.name] = pulumi.Output.all(*[a.name for a in made])
            wanted = deployment_alarm_names(prefix, svc.name, args.config.container_insights)
            by_name = {f"{prefix}-{scope}-{rule.what}": alarm for rule, alarm in zip(rules, made, strict=True)}
            self.deployment_alarm_names[svc.name] = pulumi.Output.all(*[by_name[n].name for n in wanted])
        self.all_health_alarm_names = pulumi.Output.all(
            *self.health_alarm_names.values()
        ).apply(lambda lists: [n for names in lists for n in names])

        for rule in database_rules(self._args):
            self._alarm("database", rule)
        for i in range(args.cache.cluster_count):
            for rule in cache_rules(self._args, i):
                self._alarm(f"cache-{i + 1:03d}", rule)
        for rule in analytics_rules(self._args):
            self._alarm("analytics", rule)

        self.deployment_events = self._deployment_events(account)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=prefix,
            dashboard_body=pulumi.Output.all(*widgets(self._args, self.deployment_events, self.alarms)).apply(
                lambda widgets: json.dumps({"widgets": list(widgets)}, sort_keys=True)
            ),
            opts=child,
        )

        self.alert_topic_arn = self.topic.arn
        self.dashboard_name = self.dashboard.dashboard_name
        self.register_outputs({
            "alert_topic_arn": self.alert_topic_arn,
            "dashboard_name": self.dashboard_name,
            "all_health_alarm_names": self.all_health_alarm_names,
        })

    # ---- alarms -------------------------------------------------------------------------------

    def _alarm(self, scope: str, rule: Rule) -> aws.cloudwatch.MetricAlarm:
        alarm_name = f"{self._args.name_prefix}-{scope}-{rule.what}"
        single: dict[str, Any] = {}
        if rule.metric is not None:
            m = rule.metric
            stat = {"extended_statistic": m.stat, "evaluate_low_sample_count_percentiles": "ignore"} \
                if m.stat.startswith("p") else {"statistic": m.stat}
            single = {"namespace": m.namespace, "metric_name": m.name, "dimensions": m.dimensions,
                      "period": m.period, **stat}
        queries = None
        if rule.expression is not None:
            queries = [aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="e1", expression=rule.expression, label=rule.what, return_data=True,
            )] + [
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id=key, return_data=False,
                    metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                        namespace=m.namespace, metric_name=m.name, dimensions=m.dimensions,
                        stat=m.stat, period=m.period,
                    ),
                )
                for key, m in rule.inputs.items()
            ]
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{scope}-{rule.what}",
            name=alarm_name,
            alarm_description=rule.description,
            comparison_operator=rule.comparison,
            threshold=rule.threshold,
            evaluation_periods=rule.periods,
            datapoints_to_alarm=rule.datapoints,
            treat_missing_data=rule.missing,
            metric_queries=queries,
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            tags={**self._args.tags, "Name": alarm_name},
            **single,
            # The topic policy must exist before an alarm can publish to the encrypted topic.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.topic_policy]),
        )
        self.alarms.append(alarm)
        return alarm

    def _deployment_events(self, account: pulumi.Output[str]) -> aws.cloudwatch.LogGroup:
        """Every ECS deployment of this cluster (started, completed, failed, rolled back) as log events.

        ECS sends them to EventBridge only; a rule copies this cluster's into a log group the
        dashboard queries. EventBridge writes to CloudWatch Logs under a Logs resource policy (a
        target role is not used for Logs); that policy is the account's, created once by ci/bootstrap
        for `/aws/events/<project>-*` groups, so no deploy role needs `logs:PutResourcePolicy` and
        stacks don't spend the region's quota of ten such policies.
        """
        a, name, prefix = self._args, self._name, self._args.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        partition = aws.get_partition_output(opts=pulumi.InvokeOptions(parent=self)).partition
        group = aws.cloudwatch.LogGroup(
            f"{name}-deployment-events", name=f"/aws/events/{prefix}/ecs-deployments",
            retention_in_days=a.config.log_retention_days, kms_key_id=a.kms_key_arn,
            tags=with_name(a.tags, f"/aws/events/{prefix}/ecs-deployments"),
            opts=child)
        services = pulumi.Output.all(partition, account, a.cluster_name).apply(
            lambda v: f"arn:{v[0]}:ecs:{a.region}:{v[1]}:service/{v[2]}/")
        rule = aws.cloudwatch.EventRule(
            f"{name}-deployment-events",
            name=f"{prefix}-ecs-deployments",
            description=f"{prefix}: ECS deployment state changes of the cluster's services, to CloudWatch Logs",
            event_pattern=services.apply(lambda arn: json.dumps({
                "source": ["aws.ecs"], "detail-type": [DEPLOYMENT_EVENTS], "resources": [{"prefix": arn}]})),
            tags=with_name(a.tags, f"{prefix}-ecs-deployments"),
            opts=child)
        aws.cloudwatch.EventTarget(
            f"{name}-deployment-events-target", rule=rule.name, arn=group.arn, target_id="deployment-log",
            opts=child)
        return group

    # ---- dashboard ----------------------------------------------------------------------------

def _topic_policy(topic_arn: str, account: str, region: str, prefix: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {  # Only this stack's alarms, in this account: no other account's CloudWatch can publish.
                "Sid": "CloudWatchAlarmsPublish",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{prefix}-*"},
                },
            },
            {
                "Sid": "DenyPublishWithoutTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
