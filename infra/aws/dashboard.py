"""The stack's CloudWatch dashboard: one row per layer, laid out on CloudWatch's 24-column grid."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from infra.config.deployment import ALARM_PERIOD_SECONDS

if TYPE_CHECKING:
    from infra.aws.monitoring import MonitoringArgs

# The services' own metric of events they could not hand to Firehose (products.events, EMF in its logs).
EVENTS_NAMESPACE = "ProductEvents"
EVENTS_DROPPED = "EventsDropped"
HEALTH_PERIOD = ALARM_PERIOD_SECONDS  # short, so a bake of a few minutes sees several datapoints
Dims = Mapping[str, pulumi.Input[str]]


def node(member_cluster_ids: pulumi.Output[list[str]], index: int) -> pulumi.Output[str]:
    """The index-th member's CacheClusterId: the count is known before deploy, the ids only after."""
    return member_cluster_ids.apply(lambda ids: ids[index])


def widgets(a: MonitoringArgs, deployment_events: aws.cloudwatch.LogGroup,
        alarms: list[aws.cloudwatch.MetricAlarm]) -> list[dict[str, Any]]:
    """Every widget of the stack's dashboard: a row per layer, then every alarm."""
    grid = Grid(a.region)
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
        # Both target groups of a traffic-shifting service: during a canary each carries a revision.
        tgs = [{"TargetGroup": group, "LoadBalancer": a.gateway.arn_suffix}
               for group in (d.target_group_arn_suffix, getattr(d, "alternate_target_group_arn_suffix", None))
               if group is not None]
        grid.metrics(f"{svc.name}: CPU %", [("AWS/ECS", "CPUUtilization", ecs, "Average")])
        grid.metrics(f"{svc.name}: memory %", [("AWS/ECS", "MemoryUtilization", ecs, "Average")])
        if a.config.container_insights:
            grid.metrics(f"{svc.name}: tasks", [("ECS/ContainerInsights", "RunningTaskCount", ecs, "Average"),
                                                ("ECS/ContainerInsights", "DesiredTaskCount", ecs, "Average")])
        else:
            grid.metrics(f"{svc.name}: targets", [("AWS/ApplicationELB", metric, tg, stat) for tg in tgs
                                                  for metric, stat in (("HealthyHostCount", "Minimum"),
                                                                       ("UnHealthyHostCount", "Maximum"))])
        grid.metrics(f"{svc.name}: response time (s)", [("AWS/ApplicationELB", "TargetResponseTime", tg, stat)
                                                        for tg in tgs for stat in ("p50", "p99")])

    grid.header("Deployments")
    grid.add({"type": "log", "properties": {
        "title": "ECS deployments: started, completed, failed, rolled back (newest first)",
        "region": a.region, "view": "table",
        "query": pulumi.Output.concat(
            "SOURCE '", deployment_events.name, "' | fields @timestamp, detail.eventName as event, "
            "resources.0 as service, detail.deploymentId as deployment, detail.reason as reason "
            "| sort @timestamp desc | limit 50"),
    }}, width=24, height=6)

    grid.header("Database")
    db = {"DBInstanceIdentifier": a.database.instance_identifier}
    for title, metric, stat in (("CPU %", "CPUUtilization", "Average"),
                                ("Free storage (bytes)", "FreeStorageSpace", "Minimum"),
                                ("Freeable memory (bytes)", "FreeableMemory", "Minimum"),
                                ("Connections", "DatabaseConnections", "Maximum")):
        grid.metrics(title, [("AWS/RDS", metric, db, stat)])

    grid.header("Cache")
    nodes: list[Dims] = [{"CacheClusterId": node(a.cache.member_cluster_ids, i)} for i in range(a.cache.cluster_count)]
    for title, metric, stat in (("Engine CPU %", "EngineCPUUtilization", "Average"),
                                ("Memory used % of maxmemory", "DatabaseMemoryUsagePercentage", "Average"),
                                ("Evictions", "Evictions", "Sum")):
        grid.metrics(title, [("AWS/ElastiCache", metric, dims, stat) for dims in nodes], width=8)

    if a.analytics is not None:
        grid.header("Product events")
        stream = {"DeliveryStreamName": a.analytics.stream_name}
        grid.metrics("Events received / delivered to S3", [
            ("AWS/Firehose", "IncomingRecords", stream, "Sum"),
            ("AWS/Firehose", "DeliveryToS3.Records", stream, "Sum")], width=8)
        grid.metrics("Events dropped by the services (queue full, put failed)", [
            (EVENTS_NAMESPACE, EVENTS_DROPPED, {"Stream": a.analytics.stream_name}, "Sum")], width=8)
        grid.metrics("Delivery: oldest record not in S3 (s) / failed conversions", [
            ("AWS/Firehose", "DeliveryToS3.DataFreshness", stream, "Maximum"),
            ("AWS/Firehose", "FailedConversion.Records", stream, "Sum")], width=8)

    grid.header("Alarms")
    grid.add({"type": "alarm", "properties": {
        "title": "Every alarm of the stack", "alarms": [alarm.arn for alarm in alarms],
        "sortBy": "stateUpdatedTimestamp",
    }}, width=24, height=2 + len(alarms) // 4)
    return grid.widgets


class Grid:
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
