"""The monitoring layer: alarms on every layer, one encrypted alert topic, one dashboard.

Each service's HEALTH alarms (`health_alarm_names[svc]`) evaluate one-minute periods so that a bad
deploy shows within minutes; four of them are its DEPLOYMENT alarms (`deployment_alarm_names`),
which the ECS service itself carries: ECS rolls a deployment back when one of them fires, with or
without the pipeline that started it. They judge the service on both of its target groups (a
traffic-shifting strategy alternates between two), each group on its own error rate, so a canary
on 10 % of the traffic that fails every request is caught as 100 %, not diluted to 10 %. The
gateway, database and cache alarms look at longer periods: they page people, they gate nothing.

Every alarm states its `treat_missing_data` next to its definition, because silence means
different things for different metrics: no requests is not an error, but no running tasks is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from infra.aws.dashboard import HEALTH_PERIOD, Dims, node, widgets
from infra.config import MonitoringConfig, ServiceConfig
from infra.config.deployment import (
    TASK_ALARM_DATAPOINTS,
    TASK_ALARM_PERIODS,
    TRAFFIC_ALARM_DATAPOINTS,
    TRAFFIC_ALARM_PERIODS,
)
from infra.tags import with_name

if TYPE_CHECKING:  # the layers below are only read, never constructed here
    from infra.aws.cache import Cache
    from infra.aws.database import Database
    from infra.aws.gateway import Gateway
    from infra.aws.services import DeployedService

DATA_PERIOD = 300  # seconds: database and cache alarms judge sustained trends, not spikes
ERROR_RATE_PERCENT = 5
LATENCY_P99_SECONDS = 1.0  # the platform's default target; a service with another SLO needs a knob
# Below this many requests a minute one error is already 10-20 % of traffic: that is noise, not an
# outage. Idle services are judged by their host and task alarms instead.
GATEWAY_MIN_REQUESTS = 10
SERVICE_MIN_REQUESTS = 5
ECS_HIGH_PERCENT = 90  # autoscaling targets well below this: sustained 90 % means it is not keeping up
DB_CPU_HIGH_PERCENT = 80
DB_HEADROOM = 0.10  # free storage / freeable memory below 10 % of the total
# Of max_connections estimated from the class's nominal memory, which is a little more than the
# DBInstanceClassMemory RDS computes it from: 75 % of the estimate is about 80 % of the real limit.
DB_CONNECTIONS_SHARE = 0.75
CACHE_CPU_HIGH_PERCENT = 80
# A full cache is normal (LRU keeps it full); 90 % used says the next growth will evict.
CACHE_MEMORY_HIGH_PERCENT = 90

GIB = 1024**3
# RDS for PostgreSQL: max_connections = LEAST(DBInstanceClassMemory / 9531392, 5000).
PG_BYTES_PER_CONNECTION = 9_531_392
PG_MAX_CONNECTIONS = 5000
# Memory of the instance classes RDS PostgreSQL is usually run on; others fall back below.
BURSTABLE_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
GIB_PER_VCPU = {"m": 4, "r": 8}
UNKNOWN_CLASS_MEMORY_FLOOR = 256 * 1024**2

# treat_missing_data values, each with the reason it is chosen where it is used.
IDLE_IS_FINE = "notBreaching"
SILENCE_IS_FAILURE = "breaching"
SILENCE_IS_UNKNOWN = "missing"

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


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    dimensions: Dims
    stat: str  # Average, Sum, Minimum, Maximum, or a percentile such as p99
    period: int = HEALTH_PERIOD


@dataclass(frozen=True)
class Rule:
    """One alarm: either a single `metric`, or an `expression` over the metrics in `inputs`."""

    what: str
    description: str
    comparison: str
    threshold: float
    periods: int
    datapoints: int
    missing: str
    metric: Metric | None = None
    expression: str | None = None
    inputs: dict[str, Metric] = field(default_factory=dict)


def _summed(metric: str, tgs: list[Dims], stat: str) -> dict[str, Any]:
    """A per-target-group ALB metric over every group of the service (one group: the metric itself)."""
    if len(tgs) == 1:
        return {"metric": Metric("AWS/ApplicationELB", metric, tgs[0], stat)}
    inputs = {f"m{i}": Metric("AWS/ApplicationELB", metric, tg, stat) for i, tg in enumerate(tgs)}
    return {"expression": " + ".join(f"FILL({key}, 0)" for key in inputs), "inputs": inputs}


def _highest(metric: str, tgs: list[Dims], stat: str) -> dict[str, Any]:
    """The worse of the groups' values (percentiles do not add up)."""
    if len(tgs) == 1:
        return {"metric": Metric("AWS/ApplicationELB", metric, tgs[0], stat)}
    inputs = {f"m{i}": Metric("AWS/ApplicationELB", metric, tg, stat) for i, tg in enumerate(tgs)}
    return {"expression": f"MAX([{', '.join(inputs)}])", "inputs": inputs}


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
        for rule in self._gateway_rules():
            self._alarm("gateway", rule)

        self.health_alarm_names, self.deployment_alarm_names = {}, {}
        for svc in args.services:
            scope = f"service-{svc.name}"  # never collides with the gateway/database/cache scopes
            rules = self._service_rules(svc)
            made = [self._alarm(scope, rule) for rule in rules]
            self.health_alarm_names[svc.name] = pulumi.Output.all(*[a.name for a in made])
            wanted = deployment_alarm_names(prefix, svc.name, args.config.container_insights)
            by_name = {f"{prefix}-{scope}-{rule.what}": alarm for rule, alarm in zip(rules, made, strict=True)}
            self.deployment_alarm_names[svc.name] = pulumi.Output.all(*[by_name[n].name for n in wanted])
        self.all_health_alarm_names = pulumi.Output.all(
            *self.health_alarm_names.values()
        ).apply(lambda lists: [n for names in lists for n in names])

        for rule in self._database_rules():
            self._alarm("database", rule)
        for i in range(args.cache.cluster_count):
            for rule in self._cache_rules(i):
                self._alarm(f"cache-{i + 1:03d}", rule)

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

    def _gateway_rules(self) -> list[Rule]:
        lb = {"LoadBalancer": self._args.gateway.arn_suffix}
        return [
            Rule(
                what="5xx-rate",
                description=f"More than {ERROR_RATE_PERCENT} % of requests answered 5xx by the ALB or "
                            f"its targets, 3 of 5 minutes. RequestCount leaves out the requests the ALB "
                            f"answers itself before choosing a target (503: no target), so they are added "
                            f"to it: every request a 503 is 100 %. No requests is no error (notBreaching).",
                comparison="GreaterThanThreshold", threshold=ERROR_RATE_PERCENT, periods=5, datapoints=3,
                missing=IDLE_IS_FINE,
                expression=(f"IF(FILL(req, 0) + FILL(elb, 0) >= {GATEWAY_MIN_REQUESTS}, "
                            f"100 * (FILL(elb, 0) + FILL(tgt, 0)) / (FILL(req, 0) + FILL(elb, 0)), 0)"),
                inputs={
                    "req": Metric("AWS/ApplicationELB", "RequestCount", lb, "Sum"),
                    "elb": Metric("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", lb, "Sum"),
                    "tgt": Metric("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", lb, "Sum"),
                },
            ),
            Rule(
                what="p99-latency",
                description=f"p99 target response time above {LATENCY_P99_SECONDS} s, 3 of 5 minutes. "
                            f"No requests is no latency (notBreaching).",
                comparison="GreaterThanThreshold", threshold=LATENCY_P99_SECONDS, periods=5, datapoints=3,
                missing=IDLE_IS_FINE,
                metric=Metric("AWS/ApplicationELB", "TargetResponseTime", lb, "p99"),
            ),
        ]

    def _service_rules(self, svc: ServiceConfig) -> list[Rule]:
        a, d = self._args, self._args.deployed[svc.name]
        groups: list[pulumi.Output[str]] = [d.target_group_arn_suffix]
        alternate = getattr(d, "alternate_target_group_arn_suffix", None)
        if alternate is not None:
            groups.append(alternate)
        tgs: list[Dims] = [{"TargetGroup": tg, "LoadBalancer": a.gateway.arn_suffix} for tg in groups]
        ecs = {"ClusterName": a.cluster_name, "ServiceName": d.service_name}
        both = " (on either target group)" if len(tgs) > 1 else ""
        traffic: dict[str, Any] = {"periods": TRAFFIC_ALARM_PERIODS, "datapoints": TRAFFIC_ALARM_DATAPOINTS}
        tasks: dict[str, Any] = {"periods": TASK_ALARM_PERIODS, "datapoints": TASK_ALARM_DATAPOINTS}
        rules = [
            self._error_rate(svc, tgs, alone=len(a.services) == 1),
            Rule(
                what="unhealthy-hosts",
                description=f"{svc.name}: a target fails the ALB health check{both}, 2 of 3 minutes. The ALB "
                            f"reports zeros while targets are registered; silence means no targets, "
                            f"which the task alarm judges (notBreaching).",
                comparison="GreaterThanThreshold", threshold=0, missing=IDLE_IS_FINE, **traffic,
                **_summed("UnHealthyHostCount", tgs, "Maximum"),
            ),
            Rule(
                what="p99-latency",
                description=f"{svc.name}: p99 response time above {LATENCY_P99_SECONDS} s{both}, 2 of 3 minutes. "
                            f"No requests is no latency (notBreaching).",
                comparison="GreaterThanThreshold", threshold=LATENCY_P99_SECONDS, missing=IDLE_IS_FINE, **traffic,
                **_highest("TargetResponseTime", tgs, "p99"),
            ),
            Rule(
                what="cpu-high",
                description=f"{svc.name}: average CPU above {ECS_HIGH_PERCENT} % for 3 minutes. No tasks "
                            f"means no load; missing tasks are the task alarm's to judge (notBreaching).",
                comparison="GreaterThanThreshold", threshold=ECS_HIGH_PERCENT, periods=3, datapoints=3,
                missing=IDLE_IS_FINE,
                metric=Metric("AWS/ECS", "CPUUtilization", ecs, "Average"),
            ),
            Rule(
                what="memory-high",
                description=f"{svc.name}: average memory above {ECS_HIGH_PERCENT} % for 3 minutes. No "
                            f"tasks means no load; missing tasks are the task alarm's to judge (notBreaching).",
                comparison="GreaterThanThreshold", threshold=ECS_HIGH_PERCENT, periods=3, datapoints=3,
                missing=IDLE_IS_FINE,
                metric=Metric("AWS/ECS", "MemoryUtilization", ecs, "Average"),
            ),
        ]
        if a.config.container_insights:
            rules.append(Rule(
                what="tasks-below-desired",
                description=f"{svc.name}: fewer tasks running than desired for 3 minutes (tasks failing to start). "
                            f"Container Insights reports every minute, even at zero tasks: silence means the "
                            f"service or its telemetry is gone, and a deploy must not bake on silence (breaching).",
                comparison="GreaterThanThreshold", threshold=0, missing=SILENCE_IS_FAILURE, **tasks,
                expression="desired - running",
                inputs={
                    "running": Metric("ECS/ContainerInsights", "RunningTaskCount", ecs, "Average"),
                    "desired": Metric("ECS/ContainerInsights", "DesiredTaskCount", ecs, "Average"),
                },
            ))
        else:
            # Without Container Insights nothing publishes running vs desired task counts; the ALB's
            # healthy-host count is the closest free signal that the service is serving at all.
            # (A service scaled to zero on purpose would read as down here.)
            rules.append(Rule(
                what="no-healthy-hosts",
                description=f"{svc.name}: no healthy target behind the ALB{both} for 3 minutes (tasks failing to "
                            f"start or to pass health checks). The ALB stops reporting when no target is "
                            f"registered, so silence is no healthy host (breaching).",
                comparison="LessThanThreshold", threshold=1, missing=SILENCE_IS_FAILURE, **tasks,
                **_summed("HealthyHostCount", tgs, "Minimum"),
            ))
        return rules

    def _error_rate(self, svc: ServiceConfig, tgs: list[Dims], alone: bool) -> Rule:
        """5xx of the service's requests: its targets' own and the load balancer's.

        `HTTPCode_ELB_5XX_Count` has no TargetGroup dimension. The part of it a target group can be
        blamed for is `TargetConnectionErrorCount` (the ALB's 502 when a task refuses the connection),
        counted per group. The rest (503 when a group has no target to route to) can only be
        attributed when this service is the only one behind the gateway: then every ELB 5xx is its
        own and counts, over all its requests plus those 503s (which `RequestCount` never counts:
        it only counts requests for which a target was chosen), so an outage where every request
        gets a 503 is 100 %. With several services, one service's 503s must not roll back another's
        good deployment; those 503s then show in the task alarm (no healthy host) and the gateway's
        5xx alarm. Each target group is judged on its own rate: a failing canary is its own 100 %.
        """
        inputs: dict[str, Metric] = {}
        rates = []
        for i, tg in enumerate(tgs):
            inputs |= {f"req{i}": Metric("AWS/ApplicationELB", "RequestCount", tg, "Sum"),
                       f"tgt{i}": Metric("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", tg, "Sum"),
                       f"conn{i}": Metric("AWS/ApplicationELB", "TargetConnectionErrorCount", tg, "Sum")}
            rates.append(f"IF(FILL(req{i}, 0) >= {SERVICE_MIN_REQUESTS}, "
                         f"100 * (FILL(tgt{i}, 0) + FILL(conn{i}, 0)) / FILL(req{i}, 0), 0)")
        if alone:
            inputs["elb"] = Metric("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count",
                                   {"LoadBalancer": self._args.gateway.arn_suffix}, "Sum")
            total = " + ".join([*(f"FILL(req{i}, 0)" for i in range(len(tgs))), "FILL(elb, 0)"])
            rates.append(f"IF({total} >= {SERVICE_MIN_REQUESTS}, 100 * FILL(elb, 0) / ({total}), 0)")
        whose = "its targets and the load balancer" if alone else "its targets (the ALB's 502 for refused connections included)"
        return Rule(
            what="5xx-rate",
            description=f"{svc.name}: more than {ERROR_RATE_PERCENT} % of its requests answered 5xx by {whose}, "
                        f"each target group on its own, 2 of 3 minutes. Below {SERVICE_MIN_REQUESTS} requests a "
                        f"minute a group is not judged (one error would be 20 %), and an idle service has no "
                        f"datapoints at all: both are OK (notBreaching).",
            comparison="GreaterThanThreshold", threshold=ERROR_RATE_PERCENT,
            periods=TRAFFIC_ALARM_PERIODS, datapoints=TRAFFIC_ALARM_DATAPOINTS, missing=IDLE_IS_FINE,
            expression=rates[0] if len(rates) == 1 else f"MAX([{', '.join(rates)}])", inputs=inputs,
        )

    def _database_rules(self) -> list[Rule]:
        db = self._args.database
        dims = {"DBInstanceIdentifier": db.instance_identifier}
        memory = instance_memory_bytes(db.instance_class)
        free_memory = int(memory * DB_HEADROOM) if memory else UNKNOWN_CLASS_MEMORY_FLOOR
        connections = max_connections(db.instance_class)
        unknown = ("RDS publishes every minute while the instance runs; a gap (a stopped instance, a "
                   "reboot) says nothing either way (missing).")
        return [
            Rule(
                what="cpu-high",
                description=f"Database CPU above {DB_CPU_HIGH_PERCENT} % for 15 minutes. {unknown}",
                comparison="GreaterThanThreshold", threshold=DB_CPU_HIGH_PERCENT, periods=3, datapoints=3,
                missing=SILENCE_IS_UNKNOWN,
                metric=Metric("AWS/RDS", "CPUUtilization", dims, "Average", DATA_PERIOD),
            ),
            # Storage autoscaling grows the volume at about this point; the alarm says it happened,
            # and keeps firing once max_allocated_storage is reached.
            Rule(
                what="free-storage-low",
                description=f"Database free storage below 10 % of the {db.allocated_storage} GiB allocated, "
                            f"for 10 minutes. {unknown}",
                comparison="LessThanThreshold", threshold=int(db.allocated_storage * GIB * DB_HEADROOM),
                periods=2, datapoints=2, missing=SILENCE_IS_UNKNOWN,
                metric=Metric("AWS/RDS", "FreeStorageSpace", dims, "Minimum", DATA_PERIOD),
            ),
            Rule(
                what="freeable-memory-low",
                description=f"Database freeable memory below {free_memory / 1024**2:.0f} MiB for 15 minutes. "
                            f"{unknown}",
                comparison="LessThanThreshold", threshold=free_memory, periods=3, datapoints=3,
                missing=SILENCE_IS_UNKNOWN,
                metric=Metric("AWS/RDS", "FreeableMemory", dims, "Minimum", DATA_PERIOD),
            ),
            Rule(
                what="connections-high",
                description=f"Database connections above {DB_CONNECTIONS_SHARE:.0%} of the ~{connections} "
                            f"{db.instance_class} allows, for 10 minutes. {unknown}",
                comparison="GreaterThanThreshold", threshold=int(connections * DB_CONNECTIONS_SHARE),
                periods=2, datapoints=2, missing=SILENCE_IS_UNKNOWN,
                metric=Metric("AWS/RDS", "DatabaseConnections", dims, "Maximum", DATA_PERIOD),
            ),
        ]

    def _cache_rules(self, index: int) -> list[Rule]:
        dims: Dims = {"CacheClusterId": node(self._args.cache.member_cluster_ids, index)}
        unknown = ("ElastiCache publishes every minute while the node runs; a gap (a node being "
                   "replaced) says nothing either way (missing).")
        return [
            Rule(
                what="engine-cpu-high",
                description=f"Cache node {index + 1}: engine thread CPU above {CACHE_CPU_HIGH_PERCENT} % "
                            f"for 15 minutes. {unknown}",
                comparison="GreaterThanThreshold", threshold=CACHE_CPU_HIGH_PERCENT, periods=3, datapoints=3,
                missing=SILENCE_IS_UNKNOWN,
                metric=Metric("AWS/ElastiCache", "EngineCPUUtilization", dims, "Average", DATA_PERIOD),
            ),
            Rule(
                what="memory-high",
                description=f"Cache node {index + 1}: more than {CACHE_MEMORY_HIGH_PERCENT} % of maxmemory "
                            f"used for 15 minutes. {unknown}",
                comparison="GreaterThanThreshold", threshold=CACHE_MEMORY_HIGH_PERCENT, periods=3,
                datapoints=3, missing=SILENCE_IS_UNKNOWN,
                metric=Metric("AWS/ElastiCache", "DatabaseMemoryUsagePercentage", dims, "Average", DATA_PERIOD),
            ),
            # An eviction now and then is a cache doing its job; evictions in every 5 minutes for a
            # quarter hour mean the working set no longer fits.
            Rule(
                what="evictions",
                description=f"Cache node {index + 1}: keys evicted in each of 3 consecutive 5-minute "
                            f"periods. {unknown}",
                comparison="GreaterThanThreshold", threshold=0, periods=3, datapoints=3,
                missing=SILENCE_IS_UNKNOWN,
                metric=Metric("AWS/ElastiCache", "Evictions", dims, "Sum", DATA_PERIOD),
            ),
        ]

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


def instance_memory_bytes(instance_class: str) -> int | None:
    """Memory of a db.<family>.<size> class from its family's GiB per vCPU; None when not known."""
    parts = instance_class.split(".")
    if len(parts) != 3:
        return None
    _, family, size = parts
    if family.startswith("t"):
        gib = BURSTABLE_GIB.get(size)
        return gib * GIB if gib else None
    per_vcpu = GIB_PER_VCPU.get(family[0])
    match = re.fullmatch(r"(\d*)xlarge", size)
    vcpus = 2 if size == "large" else 4 * int(match.group(1) or 1) if match else None
    return per_vcpu * vcpus * GIB if per_vcpu and vcpus else None


def max_connections(instance_class: str) -> int:
    memory = instance_memory_bytes(instance_class)
    if memory is None:
        return PG_MAX_CONNECTIONS
    return min(memory // PG_BYTES_PER_CONNECTION, PG_MAX_CONNECTIONS)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
