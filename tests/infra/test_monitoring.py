"""The monitoring layer alone, with stand-ins for the gateway, services, database and cache."""

from __future__ import annotations

import json
import types

import pulumi
import pytest

from infra.aws.alarm_rules import instance_memory_bytes, max_connections
from infra.aws.monitoring import Monitoring, MonitoringArgs
from infra.config import StackConfig, parse
from infra.tags import base_tags
from ops import stackfile
from ops.synth import Synth, run

KEY = "arn:aws:kms:us-east-1:123456789012:key/0standin-data-key"
LB = "app/refarch-alb/0123456789abcdef"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
GIB = 1024**3
ORDERS = {"name": "orders", "build": "services/orders", "cpu": 256, "memory": 512, "desired_count": 3,
          "min_count": 3, "max_count": 6, "routes": [{"path": "/orders*"}]}
LAYERS = ["Gateway", "Services", "Deployments", "Database", "Cache", "Alarms"]


def tg_suffix(svc: str) -> str:
    return f"targetgroup/refarch-{svc}/fedcba9876543210"


def config(stack: str) -> StackConfig:
    values = stackfile.read_values(stack)
    if stack == "prod":  # two services, to show every alarm and widget is per service
        values["refarch:services"] = [*values["refarch:services"], ORDERS]  # type: ignore[misc]
    return parse(values, stack, f"stacks/Pulumi.{stack}.yaml")


def synth_monitoring(cfg: StackConfig, stack: str) -> Synth:
    prefix = f"refarch-{stack}"
    nodes = [f"{prefix}-cache-{i:03d}" for i in range(1, cfg.cache.replicas + 2)]

    def build(c: StackConfig) -> None:
        out = pulumi.Output.from_input
        monitoring = Monitoring("monitoring", MonitoringArgs(
            config=c.monitoring,
            services=c.services,
            name_prefix=prefix,
            region=c.region,
            kms_key_arn=out(KEY),
            gateway=types.SimpleNamespace(arn_suffix=out(LB)),  # type: ignore[arg-type]
            deployed={svc.name: types.SimpleNamespace(  # type: ignore[misc]
                service_name=out(f"{prefix}-{svc.name}"), target_group_arn_suffix=out(tg_suffix(svc.name)))
                for svc in c.services},
            cluster_name=out(prefix),
            database=types.SimpleNamespace(  # type: ignore[arg-type]
                instance_identifier=out(f"{prefix}-db"), allocated_storage=c.database.allocated_storage,
                instance_class=c.database.instance_class),
            cache=types.SimpleNamespace(  # type: ignore[arg-type]
                member_cluster_ids=out(nodes), cluster_count=len(nodes)),
            tags=base_tags("refarch", stack, c.environment),
        ))
        pulumi.export("alert_topic_arn", monitoring.alert_topic_arn)
        pulumi.export("dashboard_name", monitoring.dashboard_name)
        pulumi.export("health_alarm_names", monitoring.health_alarm_names)
        pulumi.export("all_health_alarm_names", monitoring.all_health_alarm_names)
        pulumi.export("cache_nodes", nodes)

    return run(cfg, stack, build=build)


@pytest.fixture(scope="module")
def monitors() -> dict[str, tuple[StackConfig, Synth]]:
    # dev: Container Insights off, no e-mails, one cache node; prod: insights on, e-mails, two nodes.
    return {stack: (cfg, synth_monitoring(cfg, stack)) for stack in ("dev", "prod") for cfg in [config(stack)]}


@pytest.fixture(params=["dev", "prod"])
def case(request, monitors) -> tuple[StackConfig, Synth]:
    return monitors[request.param]


def alarms(s: Synth) -> dict[str, dict]:
    return {a["inputs"]["name"]: a["inputs"] for a in s.of_type(ALARM)}


def dimensions(alarm: dict) -> list[dict]:
    if "dimensions" in alarm:
        return [alarm["dimensions"]]
    return [q["metric"]["dimensions"] for q in alarm.get("metricQueries", []) if "metric" in q]


def test_alert_topic_is_encrypted_and_only_this_stacks_alarms_may_publish_over_tls(case):
    _, s = case
    topic = s.one("aws:sns/topic:Topic")
    assert topic["inputs"]["name"] == f"refarch-{s.stack}-alerts"
    assert topic["inputs"]["kmsMasterKeyId"] == KEY
    assert s.outputs["alert_topic_arn"] == topic["arn"]
    policy = s.one("aws:sns/topicPolicy:TopicPolicy")["inputs"]
    assert policy["arn"] == topic["arn"]
    allow, deny = json.loads(policy["policy"])["Statement"]
    assert allow["Effect"] == "Allow" and allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish" and allow["Resource"] == topic["arn"]
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"].endswith(f":alarm:refarch-{s.stack}-*")
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "sns:Publish"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_one_email_subscription_per_address_and_none_without_addresses(monitors):
    dev_cfg, dev = monitors["dev"]
    prod_cfg, prod = monitors["prod"]
    assert dev_cfg.monitoring.alert_emails == [] and dev.of_type("aws:sns/topicSubscription:TopicSubscription") == []
    subs = [r["inputs"] for r in prod.of_type("aws:sns/topicSubscription:TopicSubscription")]
    topic = prod.one("aws:sns/topic:Topic")["arn"]
    assert sorted(sub["endpoint"] for sub in subs) == sorted(prod_cfg.monitoring.alert_emails)
    assert all(sub["protocol"] == "email" and sub["topic"] == topic for sub in subs)


def test_every_alarm_notifies_the_topic_both_ways_and_chooses_its_missing_data_treatment(case):
    _, s = case
    topic = s.one("aws:sns/topic:Topic")["arn"]
    policy = s.one("aws:sns/topicPolicy:TopicPolicy")["urn"]
    assert len(alarms(s)) == len(s.of_type(ALARM)), "alarm names are unique"
    for r in s.of_type(ALARM):
        a = r["inputs"]
        assert a["name"].startswith(f"refarch-{s.stack}-") and a["tags"]["Name"] == a["name"]
        assert a["alarmActions"] == [topic] and a["okActions"] == [topic], a["name"]
        assert a["treatMissingData"] in {"notBreaching", "breaching", "missing"}, a["name"]
        assert a["treatMissingData"] in a["alarmDescription"], "the description says why"
        assert policy in r["options"]["dependsOn"]


def test_alarms_cover_every_layer(case):
    cfg, s = case
    names, p = set(alarms(s)), f"refarch-{s.stack}"
    assert {f"{p}-gateway-5xx-rate", f"{p}-gateway-p99-latency"} <= names
    for svc in cfg.services:
        assert {f"{p}-service-{svc.name}-{what}" for what in
                ("5xx-rate", "unhealthy-hosts", "p99-latency", "cpu-high", "memory-high")} <= names
    assert {f"{p}-database-{what}" for what in
            ("cpu-high", "free-storage-low", "freeable-memory-low", "connections-high")} <= names
    for node in s.outputs["cache_nodes"]:
        assert {f"{node}-{what}" for what in ("engine-cpu-high", "memory-high", "evictions")} <= names


def test_each_alarm_watches_its_own_resource(case):
    cfg, s = case
    by_name, p = alarms(s), f"refarch-{s.stack}"
    for name in (f"{p}-gateway-5xx-rate", f"{p}-gateway-p99-latency"):
        assert all(d == {"LoadBalancer": LB} for d in dimensions(by_name[name]))
    for svc in cfg.services:
        alone = len(cfg.services) == 1  # then the load balancer's own 5xx are this service's
        for name in s.outputs["health_alarm_names"][svc.name]:
            for d in dimensions(by_name[name]):
                assert d in ({"TargetGroup": tg_suffix(svc.name), "LoadBalancer": LB},
                             {"ClusterName": p, "ServiceName": f"{p}-{svc.name}"},
                             *([{"LoadBalancer": LB}] if alone and name.endswith("-5xx-rate") else [])), name
    for name, alarm in by_name.items():
        if name.startswith(f"{p}-database-"):
            assert dimensions(alarm) == [{"DBInstanceIdentifier": f"{p}-db"}]
    for node in s.outputs["cache_nodes"]:
        watched = [a for n, a in by_name.items() if n.startswith(f"{node}-")]
        assert len(watched) == 3 and all(dimensions(a) == [{"CacheClusterId": node}] for a in watched)


def test_health_alarm_names_are_registered_alarms_evaluated_fast_enough_for_a_bake(case):
    cfg, s = case
    by_name = alarms(s)
    health = s.outputs["health_alarm_names"]
    assert set(health) == {svc.name for svc in cfg.services}
    assert s.outputs["all_health_alarm_names"] == [n for svc in cfg.services for n in health[svc.name]]
    for svc in cfg.services:
        assert len(health[svc.name]) == 6 and set(health[svc.name]) <= set(by_name)
        assert all(f"-service-{svc.name}-" in n for n in health[svc.name])
        for name in health[svc.name]:
            a = by_name[name]
            periods = [a["period"]] if "period" in a else [q["metric"]["period"] for q in a["metricQueries"] if "metric" in q]
            assert set(periods) == {60} and 1 <= a["datapointsToAlarm"] <= a["evaluationPeriods"] <= 3, name


def test_running_tasks_are_judged_by_container_insights_or_else_by_healthy_hosts(monitors):
    prod_cfg, prod = monitors["prod"]
    assert prod_cfg.monitoring.container_insights
    tasks = alarms(prod)["refarch-prod-service-orders-tasks-below-desired"]
    queries = {q["id"]: q for q in tasks["metricQueries"]}
    assert queries["e1"]["expression"] == "desired - running" and queries["e1"]["returnData"] is True
    assert {q["metric"]["namespace"] for q in queries.values() if "metric" in q} == {"ECS/ContainerInsights"}
    assert (queries["running"]["metric"]["metricName"], queries["desired"]["metric"]["metricName"]) == (
        "RunningTaskCount", "DesiredTaskCount")
    assert (tasks["comparisonOperator"], tasks["threshold"], tasks["treatMissingData"]) == (
        "GreaterThanThreshold", 0, "breaching")

    dev_cfg, dev = monitors["dev"]
    assert not dev_cfg.monitoring.container_insights
    assert not any(n.endswith("tasks-below-desired") for n in alarms(dev))
    hosts = alarms(dev)["refarch-dev-service-products-no-healthy-hosts"]
    assert (hosts["namespace"], hosts["metricName"], hosts["statistic"]) == ("AWS/ApplicationELB", "HealthyHostCount", "Minimum")
    assert (hosts["comparisonOperator"], hosts["threshold"], hosts["treatMissingData"]) == (
        "LessThanThreshold", 1, "breaching")


def test_error_rates_are_metric_math_over_requests_and_only_the_expression_returns_data(case):
    cfg, s = case
    p = f"refarch-{s.stack}"
    service_terms = {"HTTPCode_Target_5XX_Count", "TargetConnectionErrorCount"} | (
        {"HTTPCode_ELB_5XX_Count"} if len(cfg.services) == 1 else set())
    for name, terms in ((f"{p}-gateway-5xx-rate", {"HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count"}),
                        (f"{p}-service-products-5xx-rate", service_terms)):
        a = alarms(s)[name]
        assert "metricName" not in a and (a["comparisonOperator"], a["threshold"]) == ("GreaterThanThreshold", 5)
        queries = {q["id"]: q for q in a["metricQueries"]}
        assert [q["id"] for q in queries.values() if q["returnData"]] == ["e1"]
        metrics = {q["metric"]["metricName"]: key for key, q in queries.items() if "metric" in q}
        assert set(metrics) == terms | {"RequestCount"}
        expression = queries["e1"]["expression"]
        assert all(key in expression for key in metrics.values()) and f"FILL({metrics['RequestCount']}, 0)" in expression
    # The requests the ALB answers itself (503: no target) are not in RequestCount: they are added to it.
    gateway = {q["id"]: q for q in alarms(s)[f"{p}-gateway-5xx-rate"]["metricQueries"]}["e1"]["expression"]
    assert gateway.endswith("/ (FILL(req, 0) + FILL(elb, 0)), 0)")


def test_latency_alarms_use_p99_and_ignore_too_few_samples(case):
    _, s = case
    latency = [a for n, a in alarms(s).items() if n.endswith("-p99-latency")]
    assert len(latency) == 1 + len(s.outputs["health_alarm_names"])
    assert all(a["extendedStatistic"] == "p99" and "statistic" not in a for a in latency)
    assert all(a["evaluateLowSampleCountPercentiles"] == "ignore" for a in latency)


def test_database_thresholds_follow_its_size(case):
    cfg, s = case
    by_name, p = alarms(s), f"refarch-{s.stack}"
    storage = by_name[f"{p}-database-free-storage-low"]
    assert (storage["metricName"], storage["comparisonOperator"]) == ("FreeStorageSpace", "LessThanThreshold")
    assert storage["threshold"] == int(cfg.database.allocated_storage * GIB * 0.10)
    memory = by_name[f"{p}-database-freeable-memory-low"]
    assert memory["threshold"] == int(instance_memory_bytes(cfg.database.instance_class) * 0.10)
    connections = by_name[f"{p}-database-connections-high"]
    assert 0 < connections["threshold"] < max_connections(cfg.database.instance_class)


def test_instance_memory_and_connection_estimates():
    assert instance_memory_bytes("db.t4g.micro") == 1 * GIB
    assert instance_memory_bytes("db.t4g.medium") == 4 * GIB
    assert instance_memory_bytes("db.m7g.large") == 8 * GIB
    assert instance_memory_bytes("db.r6g.2xlarge") == 64 * GIB
    assert instance_memory_bytes("db.r6g.xlarge") == 32 * GIB
    assert instance_memory_bytes("db.x2g.large") is None and instance_memory_bytes("db.m5.metal") is None
    assert max_connections("db.t4g.micro") == 112  # RDS's formula on 1 GiB
    assert max_connections("db.r6g.16xlarge") == 5000  # the cap


def test_dashboard_has_a_row_per_layer_and_shows_every_service_and_alarm(case):
    cfg, s = case
    dash = s.one("aws:cloudwatch/dashboard:Dashboard")
    assert dash["inputs"]["dashboardName"] == f"refarch-{s.stack}" == s.outputs["dashboard_name"]
    widgets = json.loads(dash["inputs"]["dashboardBody"])["widgets"]
    headers = [w for w in widgets if w["type"] == "text"]
    assert [h["properties"]["markdown"] for h in headers] == [f"## {layer}" for layer in LAYERS]
    assert all(h["x"] == 0 and h["width"] == 24 for h in headers)
    assert [h["y"] for h in headers] == sorted({h["y"] for h in headers}), "headers start distinct rows, in order"
    assert all(w["x"] + w["width"] <= 24 for w in widgets)
    cells = [(w["x"] + dx, w["y"] + dy) for w in widgets for dx in range(w["width"]) for dy in range(w["height"])]
    assert len(cells) == len(set(cells)), "no two widgets overlap"
    text = json.dumps([w for w in widgets if w["type"] == "metric"])  # not the alarm widget's ARNs
    for svc in cfg.services:
        assert f"refarch-{s.stack}-{svc.name}" in text and tg_suffix(svc.name) in text
        assert any(w["properties"].get("title", "").startswith(f"{svc.name}:") for w in widgets)
    for needle in (LB, f"refarch-{s.stack}-db", *s.outputs["cache_nodes"]):
        assert needle in text
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(r["arn"] for r in s.of_type(ALARM))
    assert all(w["properties"]["region"] == "us-east-1" for w in widgets if w["type"] == "metric")
