"""The cost estimate against figures computed by hand from the us-east-1 list prices.

Every expected figure is written out as arithmetic: hours x unit price, quantities x rates, so a
reader can check it against the price table (ops/review/prices/aws-us-east-1.json).
"""

from __future__ import annotations

import json

import pytest

from ops.errors import OpsError
from ops.review import cost, pricers

H = 730  # hours per month


def estimate(doc, usage, **kwargs) -> cost.Estimate:
    return cost.estimate(doc.json(), usage, "us-east-1", **kwargs)


def line(est: cost.Estimate, name: str) -> cost.ResourceCost:
    return next(r for r in est.resources if r.name == name)


def test_internet_facing_alb_pays_hours_lcus_and_one_ipv4_per_az(doc, usage):
    usage.alb_lcu = 2
    doc.add("gateway", "aws:lb/loadBalancer:LoadBalancer", "alb",
            {"loadBalancerType": "application", "subnets": ["subnet-a", "subnet-b", "subnet-c"]})
    doc.add("gateway", "aws:lb/loadBalancer:LoadBalancer", "internal",
            {"internal": True, "subnets": ["subnet-a", "subnet-b"]})
    est = estimate(doc, usage)
    assert line(est, "alb").monthly == pytest.approx(H * 0.0225 + 2 * H * 0.008 + 3 * H * 0.005)  # 39.055
    assert line(est, "internal").monthly == pytest.approx(H * 0.0225 + 2 * H * 0.008)  # no public IPv4


def test_nat_gateways_split_the_stated_traffic_and_their_eips_are_public_ipv4(doc, usage):
    usage.nat_gb_per_month = 90
    for az in range(3):
        doc.add("network", "aws:ec2/eip:Eip", f"nat-{az}-eip", {"domain": "vpc"}, id=f"eipalloc-{az}")
        doc.add("network", "aws:ec2/natGateway:NatGateway", f"nat-{az}",
                {"allocationId": f"eipalloc-{az}", "subnetId": f"subnet-{az}"})
    est = estimate(doc, usage)
    assert line(est, "nat-0").monthly == pytest.approx(H * 0.045 + 90 / 3 * 0.045)  # 32.85 + 1.35
    assert line(est, "nat-0-eip").monthly == pytest.approx(H * 0.005)  # 3.65
    assert est.by_layer()["network"] == pytest.approx(3 * (H * 0.045 + 30 * 0.045) + 3 * H * 0.005)  # 113.55


def test_nat_instance_pays_hours_and_root_volume_and_one_public_address(doc, usage):
    nat = doc.add("network", "aws:ec2/instance:Instance", "nat-instance",
                  {"instanceType": "t4g.nano", "associatePublicIpAddress": True, "sourceDestCheck": False,
                   "rootBlockDevice": {"encrypted": True, "volumeType": "gp3"}}, id="i-0nat")
    doc.add("network", "aws:ec2/eip:Eip", "nat-eip", {"domain": "vpc", "instance": nat["id"]})
    doc.add("network", "aws:ec2/instance:Instance", "bastion",
            {"instanceType": "t4g.micro", "associatePublicIpAddress": True, "rootBlockDevice": {"volumeSize": 20}})
    est = estimate(doc, usage)
    # The EIP replaces the auto-assigned address: one IPv4, priced on the EIP, not twice.
    assert line(est, "nat-instance").monthly == pytest.approx(H * 0.0042 + 8 * 0.08)  # 3.066 + 0.64 (AMI's 8 GiB)
    assert line(est, "nat-eip").monthly == pytest.approx(H * 0.005)
    assert line(est, "bastion").monthly == pytest.approx(H * 0.0084 + 20 * 0.08 + H * 0.005)


def test_fargate_prices_the_spot_share_by_base_and_weights(doc, usage):
    task = doc.add("services", "aws:ecs/taskDefinition:TaskDefinition", "api-task",
                   {"cpu": "512", "memory": "1024", "requiresCompatibilities": ["FARGATE"],
                    "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}},
                   id=doc.arn("ecs", "task-definition/api:1"), arn=doc.arn("ecs", "task-definition/api:1"))
    doc.add("services", "aws:ecs/service:Service", "api",
            {"desiredCount": 4, "taskDefinition": task["arn"],
             "capacityProviderStrategies": [{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                                            {"capacityProvider": "FARGATE_SPOT", "weight": 3}]})
    est = estimate(doc, usage)
    on_demand, spot = 1 + 3 * 1 / 4, 3 * 3 / 4  # base 1 first, the other 3 split 1:3 -> 1.75 and 2.25 tasks
    expected = (on_demand * 0.5 * H * 0.03238 + on_demand * 1 * H * 0.00356
                + spot * 0.5 * H * 0.009714 + spot * 1 * H * 0.001068)
    assert line(est, "api").monthly == pytest.approx(expected)  # 20.686 + 4.548 + 7.978 + 1.754


def test_fargate_x86_launch_type_is_all_on_demand(doc, usage):
    task = doc.add("services", "aws:ecs/taskDefinition:TaskDefinition", "job-task",
                   {"cpu": "1024", "memory": "2048"}, arn=doc.arn("ecs", "task-definition/job:1"))
    doc.add("services", "aws:ecs/service:Service", "job",
            {"desiredCount": 2, "launchType": "FARGATE", "taskDefinition": task["arn"]})
    est = estimate(doc, usage)
    assert line(est, "job").monthly == pytest.approx(2 * 1 * H * 0.04048 + 2 * 2 * H * 0.004445)  # 59.1 + 12.98


def test_fargate_split_base_then_weights():
    both = [{"capacityProvider": "FARGATE", "base": 1, "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert pricers.fargate_split(2, both) == {"FARGATE": 1.5, "FARGATE_SPOT": 0.5}
    assert pricers.fargate_split(1, both) == {"FARGATE": 1}
    assert pricers.fargate_split(1, [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]) == {"FARGATE_SPOT": 1}
    assert pricers.fargate_split(0, both) == {}


def test_rds_multi_az_doubles_instance_and_storage_and_counts_the_managed_secret(doc, usage):
    usage.backup_gb_beyond_free = 10
    doc.add("database", "aws:rds/instance:Instance", "db",
            {"engine": "postgres", "instanceClass": "db.t4g.medium", "multiAz": True, "allocatedStorage": 50,
             "storageType": "gp3", "performanceInsightsEnabled": True, "performanceInsightsRetentionPeriod": 7,
             "manageMasterUserPassword": True})
    est = estimate(doc, usage)
    # 2 x 730 h x 0.065 + 50 GB x 2 x 0.115 + 10 GB backup x 0.095 + PI free + RDS-created secret 0.40
    assert line(est, "db").monthly == pytest.approx(2 * H * 0.065 + 50 * 2 * 0.115 + 10 * 0.095 + 0 + 0.40)  # 107.75
    assert "Secrets Manager: RDS-managed master secret" in [c.what for c in line(est, "db").charges]


def test_rds_single_az_and_long_performance_insights_retention_is_flagged_not_priced(doc, usage):
    doc.add("database", "aws:rds/instance:Instance", "db",
            {"engine": "postgres", "instanceClass": "db.t4g.micro", "multiAz": False, "allocatedStorage": 20,
             "storageType": "gp3", "performanceInsightsEnabled": True, "performanceInsightsRetentionPeriod": 731})
    est = estimate(doc, usage)
    assert line(est, "db").monthly == pytest.approx(H * 0.016 + 20 * 0.115)  # 11.68 + 2.30
    assert [r.name for r in est.not_priced()] == ["db"]


def test_elasticache_valkey_nodes_are_cheaper_than_redis_nodes(doc, usage):
    for engine in ("valkey", "redis"):
        doc.add("cache", "aws:elasticache/replicationGroup:ReplicationGroup", engine,
                {"engine": engine, "nodeType": "cache.t4g.small", "numCacheClusters": 2})
    est = estimate(doc, usage)
    assert line(est, "valkey").monthly == pytest.approx(2 * H * 0.0256)  # 37.376
    assert line(est, "redis").monthly == pytest.approx(2 * H * 0.032)  # 46.72


def test_alarms_are_billed_per_metric_and_high_resolution_costs_more(doc, usage):
    doc.add("monitoring", "aws:cloudwatch/metricAlarm:MetricAlarm", "standard",
            {"metricName": "CPUUtilization", "namespace": "AWS/RDS", "period": 60})
    doc.add("monitoring", "aws:cloudwatch/metricAlarm:MetricAlarm", "math", {"metricQueries": [
        {"id": "e1", "expression": "100 * (a + b) / c", "returnData": True},
        *({"id": x, "metric": {"metricName": m, "namespace": "AWS/ApplicationELB", "period": 60, "stat": "Sum"}}
          for x, m in (("a", "HTTPCode_ELB_5XX_Count"), ("b", "HTTPCode_Target_5XX_Count"), ("c", "RequestCount"))),
    ]})
    doc.add("monitoring", "aws:cloudwatch/metricAlarm:MetricAlarm", "fast",
            {"metricName": "CPUUtilization", "namespace": "AWS/ECS", "period": 10})
    doc.add("monitoring", "aws:cloudwatch/compositeAlarm:CompositeAlarm", "composite", {"alarmRule": "ALARM(a)"})
    doc.add("monitoring", "aws:cloudwatch/dashboard:Dashboard", "board", {"dashboardName": "x"})
    est = estimate(doc, usage)
    assert line(est, "standard").monthly == pytest.approx(0.10)
    assert line(est, "math").monthly == pytest.approx(3 * 0.10)  # three metrics; the expression is free
    assert line(est, "fast").monthly == pytest.approx(0.30)
    assert line(est, "composite").monthly == pytest.approx(0.50)
    assert line(est, "board").monthly == pytest.approx(3.00)


def test_log_volume_is_split_over_log_groups_and_storage_follows_retention(doc, usage):
    usage.log_gb_per_month = 10
    doc.add("services", "aws:cloudwatch/logGroup:LogGroup", "app", {"name": "/ecs/app", "retentionInDays": 30})
    doc.add("network", "aws:cloudwatch/logGroup:LogGroup", "flow", {"name": "/vpc/flow", "retentionInDays": 7})
    est = estimate(doc, usage)
    days_per_month = H / 24  # 30.42
    assert line(est, "app").monthly == pytest.approx(5 * 0.50 + 5 * 30 / days_per_month * 0.03)  # 2.5 + 0.148
    assert line(est, "flow").monthly == pytest.approx(5 * 0.50 + 5 * 7 / days_per_month * 0.03)  # 2.5 + 0.035


def test_waf_kms_and_secrets(doc, usage):
    usage.requests_per_month = 10_000_000
    rules = [{"name": n, "priority": i} for i, n in enumerate(("rate", "common", "bad-inputs", "ip-reputation"))]
    doc.add("gateway", "aws:wafv2/webAcl:WebAcl", "waf", {"scope": "REGIONAL", "rules": rules})
    doc.add("encryption", "aws:kms/key:Key", "key", {"enableKeyRotation": True})
    doc.add("cache", "aws:secretsmanager/secret:Secret", "auth", {"name": "auth"})
    est = estimate(doc, usage)
    assert line(est, "waf").monthly == pytest.approx(5 + 4 * 1 + 10 * 0.60)  # 15.00
    assert line(est, "key").monthly == pytest.approx(1.00)
    assert line(est, "auth").monthly == pytest.approx(0.40)


def test_unknown_types_are_listed_not_priced_and_free_ones_say_why(doc, usage):
    doc.add("services", "aws:dynamodb/table:Table", "table", {"billingMode": "PAY_PER_REQUEST"})
    doc.add("network", "aws:ec2/subnet:Subnet", "subnet", {"cidrBlock": "10.0.0.0/20"})
    doc.add("services", "aws:ecr/repository:Repository", "repo", {"name": "repo"})
    est = estimate(doc, usage)
    assert {r.name: r.status for r in est.resources} == {"table": "not priced", "subnet": "free", "repo": "not priced"}
    assert "unknown resource type" in line(est, "table").reason
    assert line(est, "subnet").reason
    assert sorted(r.name for r in est.not_priced()) == ["repo", "table"]
    markdown = cost.render_markdown(est)
    assert "`table` (`aws:dynamodb/table:Table`)" in markdown and "Not priced" in markdown


def test_layers_come_from_the_outermost_component(doc, usage):
    doc.add("database", "aws:kms/key:Key", "db-key")
    doc.add("encryption", "aws:kms/key:Key", "stack-key")
    assert estimate(doc, usage).by_layer() == {"database": pytest.approx(1.0), "encryption": pytest.approx(1.0)}


def test_a_region_without_a_price_table_is_a_clear_error(doc, usage):
    with pytest.raises(OpsError, match="no price table for region 'eu-west-1'.*us-east-1"):
        cost.estimate(doc.json(), usage, "eu-west-1")


def test_cloudwatch_free_tier_is_credited_only_when_stated(doc, usage):
    usage.log_gb_per_month = 2
    for i in range(12):
        doc.add("monitoring", "aws:cloudwatch/metricAlarm:MetricAlarm", f"alarm-{i}", {"metricName": "m", "period": 60})
    doc.add("monitoring", "aws:cloudwatch/dashboard:Dashboard", "board")
    doc.add("services", "aws:cloudwatch/logGroup:LogGroup", "logs", {"retentionInDays": 7})
    listed = estimate(doc, usage)
    credited = estimate(doc, usage, cloudwatch_free_tier=True)
    # 10 of the 12 alarm metrics, the one dashboard and the 2 GB of ingestion (under the 5 GB allowance)
    assert listed.total - credited.total == pytest.approx(10 * 0.10 + 1 * 3.00 + 2 * 0.50)
    assert "free tier" in credited.by_layer()


def test_compare_shows_added_removed_and_changed_with_signed_deltas(doc, usage):
    doc.add("encryption", "aws:kms/key:Key", "kept")
    doc.add("database", "aws:rds/instance:Instance", "db",
            {"engine": "postgres", "instanceClass": "db.t4g.micro", "allocatedStorage": 20, "storageType": "gp3"})
    doc.add("cache", "aws:secretsmanager/secret:Secret", "old-secret")
    base = estimate(doc, usage)
    head_doc = json.loads(json.dumps(doc.json()))
    head_doc["resources"] = [r for r in head_doc["resources"] if r["name"] != "old-secret"]
    next(r for r in head_doc["resources"] if r["name"] == "db")["inputs"]["instanceClass"] = "db.t4g.small"
    head_doc["resources"].append({**head_doc["resources"][-1], "urn": "urn:new-key", "name": "new-key",
                                  "type": "aws:kms/key:Key", "inputs": {}})
    head = cost.estimate(head_doc, usage, "us-east-1")
    delta = cost.compare(base, head)
    rows = {row.name: (row.change, round(row.delta, 4)) for row in delta.rows}
    assert rows == {"db": ("changed", round(H * (0.032 - 0.016), 4)),  # +11.68
                    "new-key": ("added", 1.0), "old-secret": ("removed", -0.4)}
    assert delta.total == pytest.approx(H * 0.016 + 1.0 - 0.4)
    assert cost.signed(delta.total) == "+$12.28" and cost.signed(-0.4) == "-$0.40" and cost.signed(0) == "±$0.00"


def test_markdown_escapes_dollars_outside_html(doc, usage):
    doc.add("encryption", "aws:kms/key:Key", "key")
    text = cost.render_markdown(estimate(doc, usage))
    assert "| **total** | **\\$1.00** |" in text  # GitHub would render `$...$` spans as math
    assert " $" not in text.replace("<summary>", "")


# --- the shipped stacks ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def estimates(synths):
    from ops import stackfile

    configs = {stack: stackfile.load(stack) for stack in synths}
    return {stack: cost.estimate(synth.to_json(), configs[stack].usage, configs[stack].region)
            for stack, synth in synths.items()}


def test_every_resource_of_the_shipped_stacks_is_classified(estimates):
    for stack, est in estimates.items():
        unknown = [r.type for r in est.resources if "unknown resource type" in r.reason]
        assert unknown == [], f"{stack}: classify these types in ops/review/cost.py: {unknown}"


def test_dev_keeps_every_layer_and_prices_each(estimates):
    layers = estimates["dev"].by_layer()
    for layer in ("network", "gateway", "services", "database", "cache", "monitoring", "encryption"):
        assert layers.get(layer, 0) > 0, f"dev: no cost in layer {layer}: {layers}"


def test_dev_within_60_dollars_with_its_own_accounts_cloudwatch_free_tier(synths):
    from ops import stackfile

    config = stackfile.load("dev")
    est = cost.estimate(synths["dev"].to_json(), config.usage, config.region, cloudwatch_free_tier=True)
    assert est.total <= 60, cost.render_markdown(est)


# Dev was about $64 at plain list price with the internet-facing ALB (2 public IPv4, $7.30) and no WAF;
# behind the edge on CloudFront's free flat-rate plan (distribution + WAF $0) it fits without the
# CloudWatch free tier too.
def test_dev_within_60_dollars_at_list_price(synths):
    from ops import stackfile

    config = stackfile.load("dev")
    est = cost.estimate(synths["dev"].to_json(), config.usage, config.region, cloudwatch_free_tier=False)
    assert est.total <= 60


def test_prod_database_is_multi_az_at_list_price(estimates, synths):
    db = next(r for r in estimates["prod"].resources if r.type == "aws:rds/instance:Instance")
    inputs = synths["prod"].one("aws:rds/instance:Instance")["inputs"]
    assert (inputs["instanceClass"], inputs["multiAz"], inputs["allocatedStorage"]) == ("db.t4g.medium", True, 50)
    # 2 x 730 h x 0.065 + 50 GB x 2 x 0.115 + PI (7 days) free + the RDS-managed master secret 0.40
    assert db.monthly == pytest.approx(2 * H * 0.065 + 50 * 2 * 0.115 + 0.40)  # 106.80


def test_staging_runs_half_its_tasks_on_spot(estimates):
    service = next(r for r in estimates["staging"].resources if r.type == "aws:ecs/service:Service")
    # 2 tasks of 0.25 vCPU / 0.5 GB ARM64: base 1 on FARGATE, the second split 1:1 -> 1.5 on-demand, 0.5 Spot
    expected = (1.5 * 0.25 * H * 0.03238 + 1.5 * 0.5 * H * 0.00356 + 0.5 * 0.25 * H * 0.009714 + 0.5 * 0.5 * H * 0.001068)
    assert service.monthly == pytest.approx(expected)
