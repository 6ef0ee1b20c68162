"""The pricers: one function per paid resource type, each turning a resource into its monthly charges.

The network, compute, data, edge and monitoring pricers live here; auth, flags and analytics, priced
from usage assumptions, in `pricers_product`. `PRICERS` is the one registry of both.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ops.review.cost_model import Charge, Ctx, Free, NotPriced, num
from ops.review.pricers_product import PRODUCT_PRICERS


def _ipv4(ctx: Ctx, count: float, what: str) -> Charge:
    return Charge(f"public IPv4 ({what})", count * ctx.hours, "IPv4-h", ctx.p["public_ipv4"]["hour"])


def _load_balancer(r: dict, ctx: Ctx) -> list[Charge]:
    inputs = r["inputs"]
    if inputs.get("loadBalancerType", "application") != "application":
        raise NotPriced(f"{inputs['loadBalancerType']} load balancers are not in the price table")
    alb = ctx.p["alb"]
    charges = [
        Charge("ALB hours", ctx.hours, "h", alb["hour"]),
        Charge("LCU (usage.alb_lcu average)", ctx.usage.alb_lcu * ctx.hours, "LCU-h", alb["lcu_hour"]),
    ]
    if not inputs.get("internal", False):
        # An internet-facing ALB holds at least one public IPv4 per enabled subnet (AZ).
        zones = len(inputs.get("subnets") or inputs.get("subnetMappings") or [])
        charges.append(_ipv4(ctx, zones, f"{zones} AZ nodes"))
    return charges


def _nat_gateway(r: dict, ctx: Ctx) -> list[Charge]:
    nat = ctx.p["nat_gateway"]
    # The stack's NAT traffic is one figure; with a gateway per AZ it splits across them.
    share = ctx.usage.nat_gb_per_month / max(ctx.nat_gateways, 1)
    # Its public address is the EIP, priced on the EIP resource.
    return [
        Charge("NAT gateway hours", ctx.hours, "h", nat["hour"]),
        Charge("NAT data processed (usage.nat_gb_per_month share)", share, "GB", nat["gb_processed"]),
    ]


def _instance(r: dict, ctx: Ctx) -> list[Charge]:
    inputs = r["inputs"]
    itype = inputs.get("instanceType")
    rate = ctx.p["ec2"].get(itype)
    if rate is None:
        raise NotPriced(f"instance type {itype!r} is not in the price table")
    ebs = ctx.p["ebs"]
    root = inputs.get("rootBlockDevice") or {}
    size = root.get("volumeSize") or ebs["root_default_gb"]
    vtype = root.get("volumeType") or ebs["root_default_type"]
    charges = [Charge(f"EC2 {itype} hours", ctx.hours, "h", rate),
               _ebs(ctx, f"root volume {vtype}", size, vtype)]
    for device in inputs.get("ebsBlockDevices") or []:
        charges.append(_ebs(ctx, f"EBS {device.get('deviceName', '')}", device.get("volumeSize") or 0,
                            device.get("volumeType") or "gp3"))
    # An associated EIP replaces the auto-assigned address (priced once, on the EIP).
    if inputs.get("associatePublicIpAddress") and r.get("id") not in ctx.eip_instances:
        charges.append(_ipv4(ctx, 1, "instance public IP"))
    return charges


def _ebs(ctx: Ctx, what: str, size: float, vtype: str) -> Charge:
    rate = ctx.p["ebs"].get(vtype)
    return Charge(what, size, "GB-month", rate, "" if rate is not None else f"volume type {vtype!r} not in the table")


def _eip(r: dict, ctx: Ctx) -> list[Charge]:
    inputs = r["inputs"]
    attached = "instance" if inputs.get("instance") else "NAT gateway or unattached"
    return [_ipv4(ctx, 1, f"Elastic IP, {attached}")]


def _vpc_endpoint(r: dict, ctx: Ctx) -> list[Charge]:
    inputs = r["inputs"]
    if inputs.get("vpcEndpointType", "Gateway") == "Gateway":
        raise Free("gateway endpoints (S3, DynamoDB) are free")
    zones = len(inputs.get("subnetIds") or [])
    return [
        Charge(f"interface endpoint hours ({zones} AZs)", zones * ctx.hours, "AZ-h", ctx.p["vpc_endpoint"]["interface_az_hour"]),
        Charge("interface endpoint data processed", 0, "GB", None, "no usage assumption"),
    ]


def _web_acl(r: dict, ctx: Ctx) -> list[Charge]:
    tier = _flat_rate_plans(ctx).get(r.get("arn") or "")
    if tier:
        raise Free(f"covered by the CloudFront flat-rate {tier} plan (priced on the subscription)")
    waf, rules = ctx.p["waf"], r["inputs"].get("rules") or []
    charges = [
        Charge("web ACL", 1, "ACL-month", waf["web_acl_month"]),
        Charge("rules", len(rules), "rule-month", waf["rule_month"]),
        # One ALB behind the ACL: every request it receives is inspected.
        Charge("requests (usage.requests_per_month)", ctx.usage.requests_per_month / 1e6, "M requests",
               waf["million_requests"]),
    ]
    paid = {"AWSManagedRulesBotControlRuleSet", "AWSManagedRulesATPRuleSet", "AWSManagedRulesACFPRuleSet",
            "AWSManagedRulesAntiDDoSRuleSet"}
    for rule in rules:
        group = ((rule.get("statement") or {}).get("managedRuleGroupStatement") or {}).get("name")
        if group in paid:
            charges.append(Charge(f"{group} subscription and inspections", 1, "group", None,
                                  "paid managed rule group: fees not in the table"))
    return charges


def _flat_rate_plans(ctx: Ctx) -> dict[str, str]:
    """ARN of each resource a CloudFront flat-rate plan covers -> the plan's tier."""
    covered: dict[str, str] = {}
    for sub in ctx.index.of_type("aws:pricingplanmanager/subscription:Subscription"):
        for arn in sub["inputs"].get("resourceArns") or []:
            covered[arn] = str(sub["inputs"].get("planTier"))
    return covered


def _subscription(r: dict, ctx: Ctx) -> list[Charge]:
    tier = str(r["inputs"].get("planTier"))
    rate = ctx.p["cloudfront"]["flat_rate_month"].get(tier)
    if rate is None:
        raise NotPriced(f"flat-rate tier {tier!r} is not in the price table")
    allowance = ctx.p["cloudfront"]["flat_rate_allowance"][tier]
    if ctx.usage.requests_per_month > allowance["requests"] or _edge_gb(ctx) > allowance["transfer_gb"]:
        note = " (usage exceeds the allowance: AWS throttles, so choose a larger tier)"
    else:
        note = ""
    return [Charge(f"CloudFront flat-rate {tier} plan: distribution, web ACL, their log ingestion{note}", 1,
                   "plan-month", rate)]


def _edge_gb(ctx: Ctx) -> float:
    return float(getattr(ctx.usage, "edge_gb_per_month", 0) or 0)


def _distribution(r: dict, ctx: Ctx) -> list[Charge]:
    tier = _flat_rate_plans(ctx).get(r.get("arn") or "")
    if tier:
        raise Free(f"covered by its CloudFront flat-rate {tier} plan (priced on the subscription)")
    cf, requests, gb = ctx.p["cloudfront"], ctx.usage.requests_per_month, _edge_gb(ctx)
    if ctx.free_tiers:
        # The same statement as for CloudWatch: this stack has the account's always-free tiers to itself.
        requests = max(requests - cf["free_tier"]["requests"], 0)
        gb = max(gb - cf["free_tier"]["transfer_out_gb"], 0)
        what = " beyond the always-free tier"
    else:
        what = ""
    return [
        Charge(f"HTTPS requests{what} (usage.requests_per_month)", requests / 10_000, "10k requests",
               cf["https_requests_per_10k"]),
        Charge(f"data transfer out{what} (usage.edge_gb_per_month)", gb, "GB", cf["transfer_out_gb"]),
    ]


def _ecs_cluster(r: dict, ctx: Ctx) -> list[Charge]:
    settings = {s.get("name"): s.get("value") for s in r["inputs"].get("settings") or []}
    if settings.get("containerInsights") in ("enabled", "enhanced"):
        return [Charge("Container Insights metrics and performance logs", 1, "cluster", None,
                       "billed per metric and GB of performance logs: no usage assumption")]
    raise Free("no charge for the cluster (Container Insights off)")


def _ecs_service(r: dict, ctx: Ctx) -> list[Charge]:
    inputs = r["inputs"]
    task = ctx.index.get(inputs.get("taskDefinition"))
    if task is None:
        raise NotPriced("its task definition is not in this stack")
    desired = float(inputs.get("desiredCount") or 0)  # the provider's default is 0
    strategy = _strategy(inputs, ctx)
    if strategy is None:
        raise NotPriced("EC2 launch type: the instances are priced, not the service")
    unknown = [s["capacityProvider"] for s in strategy if s.get("capacityProvider") not in ("FARGATE", "FARGATE_SPOT")]
    if unknown:
        raise NotPriced(f"capacity providers {unknown} run on EC2 capacity outside the price table")
    split = fargate_split(desired, strategy)
    vcpu, memory = _task_size(task["inputs"])
    arch = ((task["inputs"].get("runtimePlatform") or {}).get("cpuArchitecture") or "X86_64").upper()
    rates = ctx.p["fargate"].get(arch)
    if rates is None:
        raise NotPriced(f"Fargate architecture {arch!r} is not in the price table")
    charges = []
    for provider, tasks in split.items():
        spot = provider == "FARGATE_SPOT"
        label = f"{arch} {'Spot' if spot else 'on-demand'}, {num(tasks)} task(s)"
        charges.append(Charge(f"Fargate vCPU ({label} × {num(vcpu)} vCPU)", tasks * vcpu * ctx.hours, "vCPU-h",
                              rates["spot_vcpu_hour" if spot else "vcpu_hour"]))
        charges.append(Charge(f"Fargate memory ({label} × {num(memory)} GB)", tasks * memory * ctx.hours, "GB-h",
                              rates["spot_gb_hour" if spot else "gb_hour"]))
    return charges


def _strategy(service_inputs: dict, ctx: Ctx) -> list[dict] | None:
    """The capacity provider strategy the service runs with; None for the EC2 launch type."""
    if service_inputs.get("capacityProviderStrategies"):
        return service_inputs["capacityProviderStrategies"]
    launch = service_inputs.get("launchType")
    if launch == "FARGATE":
        return [{"capacityProvider": "FARGATE", "weight": 1, "base": 0}]
    if launch:
        return None
    # Neither set: ECS uses the cluster's default strategy, or the EC2 launch type without one.
    cluster = ctx.index.get(service_inputs.get("cluster"))
    cluster_name = (cluster or {}).get("inputs", {}).get("name")
    for providers in ctx.index.of_type("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders"):
        if cluster_name and providers["inputs"].get("clusterName") == cluster_name:
            return providers["inputs"].get("defaultCapacityProviderStrategies") or None
    return None


def fargate_split(desired: float, strategy: list[dict]) -> dict[str, float]:
    """Tasks per capacity provider: `base` tasks first, the rest in proportion to the weights.

    Fractions are expected values (ECS places whole tasks; over a month the share converges).
    """
    split: dict[str, float] = defaultdict(float)
    placed = 0.0
    for item in strategy:
        base = min(float(item.get("base") or 0), desired - placed)
        if base > 0:
            split[item["capacityProvider"]] += base
            placed += base
    remaining = desired - placed
    weights = sum(float(item.get("weight") or 0) for item in strategy)
    if remaining > 0:
        if weights <= 0:
            split[strategy[0]["capacityProvider"]] += remaining
        else:
            for item in strategy:
                split[item["capacityProvider"]] += remaining * float(item.get("weight") or 0) / weights
    return {provider: tasks for provider, tasks in split.items() if tasks > 0}


def _task_size(task_inputs: dict) -> tuple[float, float]:
    """(vCPU, GB) of a Fargate task from `cpu`/`memory` ("256"/"512", or "0.25 vCPU"/"0.5 GB")."""

    def parse(value: Any, unit: str) -> float:
        text = str(value).strip().lower()
        if text.endswith(unit):
            return float(text.removesuffix(unit).strip())
        return float(text) / 1024

    if task_inputs.get("cpu") is None or task_inputs.get("memory") is None:
        raise NotPriced("task definition without task-level cpu/memory")
    return parse(task_inputs["cpu"], "vcpu"), parse(task_inputs["memory"], "gb")


def _rds_instance(r: dict, ctx: Ctx) -> list[Charge]:
    inputs, rds = r["inputs"], ctx.p["rds"]
    engine, cls = inputs.get("engine", ""), inputs.get("instanceClass")
    rate = rds.get(engine, {}).get(cls)
    if rate is None:
        raise NotPriced(f"{engine or 'unknown engine'} {cls} is not in the price table")
    copies = 2 if inputs.get("multiAz") else 1
    az = "multi-AZ: primary + standby" if copies == 2 else "single-AZ"
    storage_type = inputs.get("storageType") or rds["default_storage_type"]
    storage_rate = rds["storage_gb_month"].get(storage_type)
    size = float(inputs.get("allocatedStorage") or 0)
    charges = [
        Charge(f"RDS {cls} hours ({az})", copies * ctx.hours, "instance-h", rate),
        Charge(f"{storage_type} storage ({num(size)} GB × {copies})", size * copies, "GB-month", storage_rate,
               "" if storage_rate is not None else f"storage type {storage_type!r} not in the table"),
    ]
    backup = ctx.usage.backup_gb_beyond_free / max(ctx.databases, 1)
    charges.append(Charge("backup storage beyond the free allowance (usage.backup_gb_beyond_free)", backup,
                          "GB-month", rds["backup_gb_month"]))
    if inputs.get("performanceInsightsEnabled"):
        days = int(inputs.get("performanceInsightsRetentionPeriod") or rds["performance_insights_free_days"])
        if days <= rds["performance_insights_free_days"]:
            charges.append(Charge(f"Performance Insights ({days}-day retention: free tier)", 1, "instance", 0.0))
        else:
            charges.append(Charge(f"Performance Insights ({days}-day retention)", 1, "instance", None,
                                  "long-term retention is billed per vCPU: not in the table"))
    if inputs.get("manageMasterUserPassword"):
        # RDS creates this secret itself: no resource in the program, but a line on the bill.
        charges.append(Charge("Secrets Manager: RDS-managed master secret", 1, "secret-month",
                              ctx.p["secretsmanager"]["secret_month"]))
    return charges


def _replication_group(r: dict, ctx: Ctx) -> list[Charge]:
    inputs = r["inputs"]
    engine, node = (inputs.get("engine") or "redis").lower(), inputs.get("nodeType")
    rate = ctx.p["elasticache"].get(engine, {}).get(node)
    if rate is None:
        raise NotPriced(f"{engine} {node} is not in the price table")
    if inputs.get("numCacheClusters"):
        nodes = int(inputs["numCacheClusters"])
    else:
        nodes = int(inputs.get("numNodeGroups") or 1) * (1 + int(inputs.get("replicasPerNodeGroup") or 0))
    return [Charge(f"ElastiCache {engine} {node} node-hours ({nodes} node(s))", nodes * ctx.hours, "node-h", rate)]


def _metric_alarm(r: dict, ctx: Ctx) -> list[Charge]:
    inputs, cw = r["inputs"], ctx.p["cloudwatch"]
    queries = inputs.get("metricQueries") or []
    if queries:
        metrics = [q for q in queries if q.get("metric")]
        count = len(metrics)
        # An anomaly detection band is billed as three metrics: the metric and the band's two bounds.
        count += 2 * sum(1 for q in queries if "ANOMALY_DETECTION_BAND" in str(q.get("expression") or ""))
        periods = [int((q.get("metric") or {}).get("period") or q.get("period") or 60) for q in metrics]
    else:
        count, periods = 1, [int(inputs.get("period") or 60)]
    high_res = any(p < 60 for p in periods)
    rate = cw["alarm_metric_high_res_month" if high_res else "alarm_metric_month"]
    kind = "metric math" if queries else "standard"
    return [Charge(f"alarm ({kind}, {count} metric(s){', high resolution' if high_res else ''})", count,
                   "alarm metric-month", rate)]


def _log_group(r: dict, ctx: Ctx) -> list[Charge]:
    inputs, cw = r["inputs"], ctx.p["cloudwatch"]
    # The stack's log volume is one assumption; spread evenly over its log groups.
    share = ctx.usage.log_gb_per_month / max(ctx.log_groups, 1)
    infrequent = inputs.get("logGroupClass") == "INFREQUENT_ACCESS"
    ingest = cw["logs_ingest_gb_infrequent_access" if infrequent else "logs_ingest_gb"]
    charges = [Charge("log ingestion (usage.log_gb_per_month share)", share, "GB", ingest)]
    days = inputs.get("retentionInDays")
    if days:
        # Steady state: what the retention window holds, uncompressed (AWS bills compressed: an upper bound).
        stored = share * float(days) / (ctx.hours / 24)
        charges.append(Charge(f"log storage ({days}-day retention)", stored, "GB-month", cw["logs_store_gb_month"]))
    else:
        charges.append(Charge("log storage (never expires)", 0, "GB-month", None,
                              "grows without bound: set retention_in_days"))
    return charges


def _fixed(table: str, key: str, what: str, unit: str):
    def price(r: dict, ctx: Ctx) -> list[Charge]:
        return [Charge(what, 1, unit, ctx.p[table][key])]
    return price


PRICERS = {
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:alb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "aws:ec2/instance:Instance": _instance,
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _vpc_endpoint,
    "aws:wafv2/webAcl:WebAcl": _web_acl,
    "aws:ecs/cluster:Cluster": _ecs_cluster,
    "aws:ecs/service:Service": _ecs_service,
    "aws:rds/instance:Instance": _rds_instance,
    "aws:elasticache/replicationGroup:ReplicationGroup": _replication_group,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _metric_alarm,
    "aws:cloudwatch/compositeAlarm:CompositeAlarm": _fixed("cloudwatch", "composite_alarm_month", "composite alarm", "alarm-month"),
    "aws:cloudwatch/dashboard:Dashboard": _fixed("cloudwatch", "dashboard_month", "dashboard", "dashboard-month"),
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:kms/key:Key": _fixed("kms", "key_month", "customer-managed key", "key-month"),
    "aws:kms/replicaKey:ReplicaKey": _fixed("kms", "key_month", "replica key", "key-month"),
    "aws:secretsmanager/secret:Secret": _fixed("secretsmanager", "secret_month", "secret", "secret-month"),
    "aws:route53/zone:Zone": _fixed("route53", "zone_month", "hosted zone", "zone-month"),
    "aws:cloudfront/distribution:Distribution": _distribution,
    "aws:pricingplanmanager/subscription:Subscription": _subscription,
    **PRODUCT_PRICERS,
}
