"""The monitoring layer's alarm rules, layer by layer: what each alarm measures, its threshold and
how it reads silence. Pure data from the layers' outputs; `Monitoring` turns each rule into an alarm."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

from infra.aws.dashboard import HEALTH_PERIOD, Dims, node
from infra.config import ServiceConfig
from infra.config.deployment import (
    TASK_ALARM_DATAPOINTS,
    TASK_ALARM_PERIODS,
    TRAFFIC_ALARM_DATAPOINTS,
    TRAFFIC_ALARM_PERIODS,
)

if TYPE_CHECKING:
    from infra.aws.monitoring import MonitoringArgs

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

# Beyond the stream's own buffer interval: one retry cycle of S3 delivery before anyone is paged.
ANALYTICS_FRESHNESS_SLACK_SECONDS = 900

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


def gateway_rules(a: MonitoringArgs) -> list[Rule]:
    lb = {"LoadBalancer": a.gateway.arn_suffix}
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

def service_rules(a: MonitoringArgs, svc: ServiceConfig) -> list[Rule]:
    d = a.deployed[svc.name]
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
        error_rate(a, svc, tgs, alone=len(a.services) == 1),
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

def error_rate(a: MonitoringArgs, svc: ServiceConfig, tgs: list[Dims], alone: bool) -> Rule:
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
                               {"LoadBalancer": a.gateway.arn_suffix}, "Sum")
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

def database_rules(a: MonitoringArgs) -> list[Rule]:
    db = a.database
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

def cache_rules(a: MonitoringArgs, index: int) -> list[Rule]:
    dims: Dims = {"CacheClusterId": node(a.cache.member_cluster_ids, index)}
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


def analytics_rules(a: MonitoringArgs) -> list[Rule]:
    """Firehose falling behind or refusing records: the events are late, or land in errors/."""
    if a.analytics is None:
        return []
    dims: Dims = {"DeliveryStreamName": a.analytics.stream_name}
    idle = "Firehose publishes only while it holds records; an idle stream has nothing to deliver (notBreaching)."
    stale = a.analytics.buffer_seconds + ANALYTICS_FRESHNESS_SLACK_SECONDS
    return [
        Rule(
            what="delivery-stale",
            description=f"Product events: the oldest record not yet in S3 is older than {stale} s (the "
                        f"{a.analytics.buffer_seconds} s buffer plus {ANALYTICS_FRESHNESS_SLACK_SECONDS} s), "
                        f"3 of 3 five-minute periods: S3 or KMS refuses Firehose's writes. {idle}",
            comparison="GreaterThanThreshold", threshold=stale, periods=3, datapoints=3, missing=IDLE_IS_FINE,
            metric=Metric("AWS/Firehose", "DeliveryToS3.DataFreshness", dims, "Maximum", DATA_PERIOD),
        ),
        Rule(
            what="conversion-failed",
            description=f"Product events: records Firehose could not convert to Parquet (they go to errors/ "
                        f"instead of the table), 2 of 3 five-minute periods. {idle}",
            comparison="GreaterThanThreshold", threshold=0, periods=3, datapoints=2, missing=IDLE_IS_FINE,
            metric=Metric("AWS/Firehose", "FailedConversion.Records", dims, "Sum", DATA_PERIOD),
        ),
    ]


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
