"""The monitoring layer: alarms on every layer, one encrypted alert topic, one dashboard.

Each service's HEALTH alarms (`health_alarm_names[svc]`) are what the delivery pipeline reads during
its bake window: they evaluate one-minute periods so that a bad deploy shows within minutes. The
gateway, database and cache alarms look at longer periods: they page people, they gate nothing.

Every alarm states its `treat_missing_data` next to its definition, because silence means
different things for different metrics: no requests is not an error, but no running tasks is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from infra.config import MonitoringConfig, ServiceConfig
from infra.tags import with_name

if TYPE_CHECKING:  # the layers below are only read, never constructed here
    from infra.aws.cache import Cache
    from infra.aws.database import Database
    from infra.aws.gateway import Gateway
    from infra.aws.services import DeployedService

HEALTH_PERIOD = 60  # seconds: short, so a bake of a few minutes sees several datapoints
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
Dims = Mapping[str, pulumi.Input[str]]

IDLE_IS_FINE = "notBreaching"
SILENCE_IS_FAILURE = "breaching"
SILENCE_IS_UNKNOWN = "missing"


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


class Monitoring(pulumi.ComponentResource):
    alert_topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]
    health_alarm_names: dict[str, pulumi.Output[list[str]]]
    all_health_alarm_names: pulumi.Output[list[str]]

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

        self.health_alarm_names = {}
        for svc in args.services:
            scope = f"service-{svc.name}"  # never collides with the gateway/database/cache scopes
            made = [self._alarm(scope, rule) for rule in self._service_rules(svc)]
            self.health_alarm_names[svc.name] = pulumi.Output.all(*[a.name for a in made])
        self.all_health_alarm_names = pulumi.Output.all(
            *self.health_alarm_names.values()
        ).apply(lambda lists: [n for names in lists for n in names])

        for rule in self._database_rules():
            self._alarm("database", rule)
        for i in range(args.cache.cluster_count):
            for rule in self._cache_rules(i):
                self._alarm(f"cache-{i + 1:03d}", rule)

        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=prefix,
            dashboard_body=pulumi.Output.all(*self._widgets()).apply(
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
                            f"its targets, 3 of 5 minutes. No requests is no error (notBreaching).",
                comparison="GreaterThanThreshold", threshold=ERROR_RATE_PERCENT, periods=5, datapoints=3,
                missing=IDLE_IS_FINE,
                expression=f"IF(req >= {GATEWAY_MIN_REQUESTS}, 100 * (FILL(elb, 0) + FILL(tgt, 0)) / req, 0)",
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
        tg = {"TargetGroup": d.target_group_arn_suffix, "LoadBalancer": a.gateway.arn_suffix}
        ecs = {"ClusterName": a.cluster_name, "ServiceName": d.service_name}
        rules = [
            # HTTPCode_ELB_5XX_Count has no TargetGroup dimension: the ALB's own 502/503s for this
            # service show up as unhealthy or missing hosts below, and in the gateway's rate.
            Rule(
                what="5xx-rate",
                description=f"{svc.name}: more than {ERROR_RATE_PERCENT} % of its requests answered 5xx, "
                            f"2 of 3 minutes. No requests is no error (notBreaching).",
                comparison="GreaterThanThreshold", threshold=ERROR_RATE_PERCENT, periods=3, datapoints=2,
                missing=IDLE_IS_FINE,
                expression=f"IF(req >= {SERVICE_MIN_REQUESTS}, 100 * FILL(err, 0) / req, 0)",
                inputs={
                    "req": Metric("AWS/ApplicationELB", "RequestCount", tg, "Sum"),
                    "err": Metric("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", tg, "Sum"),
                },
            ),
            Rule(
                what="unhealthy-hosts",
                description=f"{svc.name}: a target fails the ALB health check, 2 of 3 minutes. The ALB "
                            f"reports zeros while targets are registered; silence means no targets, "
                            f"which the task alarm judges (notBreaching).",
                comparison="GreaterThanThreshold", threshold=0, periods=3, datapoints=2,
                missing=IDLE_IS_FINE,
                metric=Metric("AWS/ApplicationELB", "UnHealthyHostCount", tg, "Maximum"),
            ),
            Rule(
                what="p99-latency",
                description=f"{svc.name}: p99 response time above {LATENCY_P99_SECONDS} s, 2 of 3 minutes. "
                            f"No requests is no latency (notBreaching).",
                comparison="GreaterThanThreshold", threshold=LATENCY_P99_SECONDS, periods=3, datapoints=2,
                missing=IDLE_IS_FINE,
                metric=Metric("AWS/ApplicationELB", "TargetResponseTime", tg, "p99"),
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
                description=f"{svc.name}: fewer tasks running than desired for 3 minutes. Container "
                            f"Insights reports every minute, even at zero tasks: silence means the service "
                            f"or its telemetry is gone, and a deploy must not bake on silence (breaching).",
                comparison="GreaterThanThreshold", threshold=0, periods=3, datapoints=3,
                missing=SILENCE_IS_FAILURE,
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
                description=f"{svc.name}: no healthy target behind the ALB, 2 of 3 minutes. The ALB stops "
                            f"reporting when no target is registered, so silence is no healthy host "
                            f"(breaching).",
                comparison="LessThanThreshold", threshold=1, periods=3, datapoints=2,
                missing=SILENCE_IS_FAILURE,
                metric=Metric("AWS/ApplicationELB", "HealthyHostCount", tg, "Minimum"),
            ))
        return rules

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
        dims: Dims = {"CacheClusterId": _node(self._args.cache.member_cluster_ids, index)}
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

    # ---- dashboard ----------------------------------------------------------------------------

    def _widgets(self) -> list[dict[str, Any]]:
        a = self._args
        grid = _Grid(a.region)
        lb = {"LoadBalancer": a.gateway.arn_suffix}

        grid.header("Gateway")
        grid.metrics("Requests", [("AWS/ApplicationELB", "RequestCount", lb, "Sum")], width=8)
        grid.metrics("5xx responses", [("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", lb, "Sum"),
                                       ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", lb, "Sum")], width=8)
        grid.metrics("Response time (s)", [("AWS/ApplicationELB", "TargetResponseTime", lb, "p50"),
                                           ("AWS/ApplicationELB", "TargetResponseTime", lb, "p99")], width=8)

        grid.header("Services")
        for svc in a.services:
            d = a.deployed[svc.name]
            ecs = {"ClusterName": a.cluster_name, "ServiceName": d.service_name}
            tg = {"TargetGroup": d.target_group_arn_suffix, "LoadBalancer": a.gateway.arn_suffix}
            grid.metrics(f"{svc.name}: CPU %", [("AWS/ECS", "CPUUtilization", ecs, "Average")])
            grid.metrics(f"{svc.name}: memory %", [("AWS/ECS", "MemoryUtilization", ecs, "Average")])
            if a.config.container_insights:
                grid.metrics(f"{svc.name}: tasks", [("ECS/ContainerInsights", "RunningTaskCount", ecs, "Average"),
                                                    ("ECS/ContainerInsights", "DesiredTaskCount", ecs, "Average")])
            else:
                grid.metrics(f"{svc.name}: targets", [("AWS/ApplicationELB", "HealthyHostCount", tg, "Minimum"),
                                                      ("AWS/ApplicationELB", "UnHealthyHostCount", tg, "Maximum")])
            grid.metrics(f"{svc.name}: response time (s)", [("AWS/ApplicationELB", "TargetResponseTime", tg, "p50"),
                                                            ("AWS/ApplicationELB", "TargetResponseTime", tg, "p99")])

        grid.header("Database")
        db = {"DBInstanceIdentifier": a.database.instance_identifier}
        for title, metric, stat in (("CPU %", "CPUUtilization", "Average"),
                                    ("Free storage (bytes)", "FreeStorageSpace", "Minimum"),
                                    ("Freeable memory (bytes)", "FreeableMemory", "Minimum"),
                                    ("Connections", "DatabaseConnections", "Maximum")):
            grid.metrics(title, [("AWS/RDS", metric, db, stat)])

        grid.header("Cache")
        nodes: list[Dims] = [{"CacheClusterId": _node(a.cache.member_cluster_ids, i)} for i in range(a.cache.cluster_count)]
        for title, metric, stat in (("Engine CPU %", "EngineCPUUtilization", "Average"),
                                    ("Memory used % of maxmemory", "DatabaseMemoryUsagePercentage", "Average"),
                                    ("Evictions", "Evictions", "Sum")):
            grid.metrics(title, [("AWS/ElastiCache", metric, dims, stat) for dims in nodes], width=8)

        grid.header("Alarms")
        grid.add({"type": "alarm", "properties": {
            "title": "Every alarm of the stack", "alarms": [alarm.arn for alarm in self.alarms],
            "sortBy": "stateUpdatedTimestamp",
        }}, width=24, height=2 + len(self.alarms) // 4)
        return grid.widgets


class _Grid:
    """Lays widgets out left to right on CloudWatch's 24-column grid; a header starts a new row."""

    def __init__(self, region: str):
        self.region = region
        self.widgets: list[dict[str, Any]] = []
        self.x = self.y = self.row_height = 0

    def add(self, widget: dict[str, Any], width: int, height: int) -> None:
        if self.x + width > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        self.widgets.append({**widget, "x": self.x, "y": self.y, "width": width, "height": height})
        self.x += width
        self.row_height = max(self.row_height, height)

    def header(self, text: str) -> None:
        self.x = 24  # forces a new row
        self.add({"type": "text", "properties": {"markdown": f"## {text}"}}, width=24, height=1)

    def metrics(self, title: str, series: list[tuple[str, str, Dims, str]],
                width: int = 6) -> None:
        rows = [[namespace, name, *[p for kv in dims.items() for p in kv], {"stat": stat}]
                for namespace, name, dims, stat in series]
        self.add({"type": "metric", "properties": {
            "title": title, "region": self.region, "view": "timeSeries", "period": HEALTH_PERIOD,
            "metrics": rows,
        }}, width=width, height=6)


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


def _node(member_cluster_ids: pulumi.Output[list[str]], index: int) -> pulumi.Output[str]:
    """The index-th member's CacheClusterId: the count is known before deploy, the ids only after."""
    return member_cluster_ids.apply(lambda ids: ids[index])


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
