"""Monthly cost estimate of a synthesized stack at on-demand list prices (`invoke cost`).

Every resource in the synth output ends up in exactly one of three states: priced (with the
arithmetic shown), free (an explicit allowlist with the reason), or "not priced" (it costs money
but there is no price or usage assumption for it). Nothing is silently zero: an unknown type is
"not priced" until someone adds it here.

Usage-based charges come from the stack file's `usage` section (`infra.config.UsageConfig`); the
prices from `ops/review/prices/aws-<region>.json`, which states its source and date.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

from ops.errors import OpsError
from ops.review import Index, SynthJson, is_component, layers

PRICES_DIR = Path(__file__).resolve().parent / "prices"
# Layers in the order a reader walks the architecture; anything else sorts after them.
LAYER_ORDER = ("network", "edge", "client", "gateway", "services", "autoscaling", "database", "cache", "monitoring",
               "encryption", "stack", "free tier")

Status = Literal["priced", "free", "not priced"]


class Usage(Protocol):
    """What the estimate reads from `StackConfig.usage` (a protocol so tests can pass their own)."""

    requests_per_month: float
    alb_lcu: float
    log_gb_per_month: float
    nat_gb_per_month: float
    backup_gb_beyond_free: float


@dataclass(frozen=True)
class Charge:
    """One priced dimension of a resource: quantity x unit price per month."""

    what: str
    quantity: float
    unit: str
    unit_price: float | None  # None: this part costs money but is not priced
    note: str = ""

    @property
    def monthly(self) -> float | None:
        return None if self.unit_price is None else self.quantity * self.unit_price

    def formula(self) -> str:
        if self.unit_price is None:
            return f"not priced: {self.note}" if self.note else "not priced"
        return f"{_num(self.quantity)} {self.unit} × ${self.unit_price:g}"


@dataclass
class ResourceCost:
    urn: str
    name: str
    type: str
    layer: str
    status: Status
    charges: list[Charge] = field(default_factory=list)
    reason: str = ""  # why free / why not priced

    @property
    def monthly(self) -> float:
        return sum(c.monthly or 0.0 for c in self.charges)

    @property
    def unpriced_parts(self) -> list[Charge]:
        return [c for c in self.charges if c.unit_price is None]


@dataclass
class Estimate:
    stack: str
    region: str
    resources: list[ResourceCost]
    assumptions: list[str]
    basis: str
    compiled: str

    @property
    def total(self) -> float:
        return sum(r.monthly for r in self.resources)

    def by_layer(self) -> dict[str, float]:
        sums: dict[str, float] = defaultdict(float)
        for r in self.resources:
            if r.status != "free":
                sums[r.layer] += r.monthly
        return dict(sorted(sums.items(), key=lambda kv: _layer_key(kv[0])))

    def not_priced(self) -> list[ResourceCost]:
        """Resources (or parts of them) that cost money but have no figure in the total."""
        return [r for r in self.resources if r.status == "not priced" or r.unpriced_parts]

    def priced(self) -> list[ResourceCost]:
        return sorted((r for r in self.resources if r.status == "priced"),
                      key=lambda r: (_layer_key(r.layer), -r.monthly, r.name))

    def by_urn(self) -> dict[str, ResourceCost]:
        return {r.urn: r for r in self.resources}


class _NotPriced(Exception):  # noqa: N818 - a pricer's verdict, not an error
    """Raised by a pricer: this resource costs money, but the table cannot say how much."""


class _Free(Exception):  # noqa: N818 - a pricer's verdict, not an error
    """Raised by a pricer: this particular configuration of a usually paid type costs nothing."""


# --- price table -------------------------------------------------------------------------------

@cache
def prices(region: str) -> dict[str, Any]:
    path = PRICES_DIR / f"aws-{region}.json"
    if not path.is_file():
        shipped = sorted(p.stem.removeprefix("aws-") for p in PRICES_DIR.glob("aws-*.json"))
        raise OpsError(
            f"no price table for region {region!r}: the repository ships {', '.join(shipped)} only "
            f"({PRICES_DIR.relative_to(PRICES_DIR.parents[2])}/aws-<region>.json); add one taken from the "
            f"AWS pricing pages or the Price List API offer files, with its source and date"
        )
    return json.loads(path.read_text())


# --- what costs nothing, explicitly ---------------------------------------------------------------

FREE: dict[str, str] = {
    "aws:ec2/vpc:Vpc": "no charge for the VPC itself",
    "aws:ec2/subnet:Subnet": "no charge",
    "aws:ec2/routeTable:RouteTable": "no charge",
    "aws:ec2/route:Route": "no charge",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "no charge",
    "aws:ec2/internetGateway:InternetGateway": "no charge (data transfer is billed, not the gateway)",
    "aws:ec2/securityGroup:SecurityGroup": "no charge",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "no charge",
    "aws:ec2/securityGroupRule:SecurityGroupRule": "no charge",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "no charge",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "no charge",
    "aws:ec2/networkAcl:NetworkAcl": "no charge",
    "aws:ec2/defaultNetworkAcl:DefaultNetworkAcl": "no charge",
    "aws:ec2/flowLog:FlowLog": "no charge for the flow log; its log group's ingestion is priced there",
    "aws:ec2/launchTemplate:LaunchTemplate": "no charge",
    "aws:iam/role:Role": "IAM is free",
    "aws:iam/policy:Policy": "IAM is free",
    "aws:iam/rolePolicy:RolePolicy": "IAM is free",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "IAM is free",
    "aws:iam/instanceProfile:InstanceProfile": "IAM is free",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "IAM is free",
    "aws:lb/listener:Listener": "included in the load balancer's hours and LCUs",
    "aws:lb/listenerRule:ListenerRule": "included in the load balancer's LCUs (first 10 rules per request)",
    "aws:lb/targetGroup:TargetGroup": "no charge",
    "aws:lb/listenerCertificate:ListenerCertificate": "no charge",
    "aws:wafv2/webAclAssociation:WebAclAssociation": "no charge; the web ACL is priced",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": "no charge; log delivery priced at the destination",
    "aws:acm/certificate:Certificate": "public ACM certificates are free",
    "aws:acm/certificateValidation:CertificateValidation": "no charge",
    "aws:route53/record:Record": "no charge per record; alias queries to AWS resources are free",
    "aws:kms/alias:Alias": "no charge; the key is priced",
    "aws:rds/subnetGroup:SubnetGroup": "no charge",
    "aws:elasticache/user:User": "no charge",
    "aws:elasticache/userGroup:UserGroup": "no charge",
    "aws:rds/parameterGroup:ParameterGroup": "no charge",
    "aws:rds/optionGroup:OptionGroup": "no charge",
    "aws:elasticache/subnetGroup:SubnetGroup": "no charge",
    "aws:elasticache/parameterGroup:ParameterGroup": "no charge",
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": "no charge",
    "aws:ecs/taskDefinition:TaskDefinition": "no charge to register; Fargate time is priced on the service that runs it (one-off tasks such as migrations are not priced)",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": "no charge",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "no charge",
    "aws:appautoscaling/target:Target": "Application Auto Scaling is free",
    "aws:appautoscaling/policy:Policy": "Application Auto Scaling is free (its alarms are AWS-managed)",
    "aws:sns/topic:Topic": "no standing charge; alarm notifications are a handful of publishes (per-request charges round to $0.00)",
    "aws:sns/topicPolicy:TopicPolicy": "no charge",
    "aws:sns/topicSubscription:TopicSubscription": "no standing charge; a few alarm e-mails per month round to $0.00",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "no charge",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "no charge",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": "no charge (SSE-S3)",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "no charge",
    "aws:s3/bucketPolicy:BucketPolicy": "no charge",
    "aws:s3/bucketVersioning:BucketVersioning": "no charge for the setting; stored versions count as storage",
    "aws:secretsmanager/secretVersion:SecretVersion": "no charge; the secret is priced",
    "aws:secretsmanager/secretPolicy:SecretPolicy": "no charge",
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": "no charge",
    "aws:lambda/function:Function": "the smoke hook: a few 128 MB invocations per deployment round to $0.00",
    "aws:cloudwatch/eventRule:EventRule": "no charge: AWS service events on the default event bus are free",
    "aws:cloudwatch/eventTarget:EventTarget": "no charge; the log group's ingestion is priced there",
    "aws:cloudfront/vpcOrigin:VpcOrigin": "VPC origins carry no charge (the ALB behind it is priced)",
    "aws:cloudfront/cachePolicy:CachePolicy": "no charge",
    "aws:cloudfront/originRequestPolicy:OriginRequestPolicy": "no charge",
    "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy": "no charge",
    "aws:cloudfront/originAccessControl:OriginAccessControl": "no charge",
    "aws:cloudwatch/logDeliverySource:LogDeliverySource": "no charge; the destination log group's ingestion is priced there",
    "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination": "no charge; the log group is priced",
    "aws:cloudwatch/logDelivery:LogDelivery": "no charge; the log group is priced",
    "random:index/randomPassword:RandomPassword": "not a cloud resource",
    "random:index/randomString:RandomString": "not a cloud resource",
    "random:index/randomId:RandomId": "not a cloud resource",
}

# Types that do cost money but only by usage nobody has stated an assumption for.
UNPRICED: dict[str, str] = {
    "aws:s3/bucket:Bucket": "storage ($0.023/GB-month) and requests by usage; no assumption in `usage`",
    "aws:s3/bucketV2:BucketV2": "storage ($0.023/GB-month) and requests by usage; no assumption in `usage`",
    "aws:ecr/repository:Repository": "image storage ($0.10/GB-month) by image size; no assumption in `usage`",
}


# --- pricers -------------------------------------------------------------------------------------

class _Ctx:
    """What every pricer needs: the table, the usage assumptions, and the stack's other resources."""

    def __init__(self, index: Index, table: dict[str, Any], usage: Usage):
        self.index, self.p, self.usage = index, table, usage
        self.hours: float = table["hours_per_month"]
        self.nat_gateways = sum(1 for _ in index.of_type("aws:ec2/natGateway:NatGateway"))
        self.log_groups = sum(1 for _ in index.of_type("aws:cloudwatch/logGroup:LogGroup"))
        self.databases = sum(1 for _ in index.of_type("aws:rds/instance:Instance"))
        self.eip_instances = {r["inputs"].get("instance") for r in index.of_type("aws:ec2/eip:Eip")}
        # The stack has its account's always-free tiers to itself (CloudWatch's, CloudFront's).
        self.free_tiers = False


def _ipv4(ctx: _Ctx, count: float, what: str) -> Charge:
    return Charge(f"public IPv4 ({what})", count * ctx.hours, "IPv4-h", ctx.p["public_ipv4"]["hour"])


def _load_balancer(r: dict, ctx: _Ctx) -> list[Charge]:
    inputs = r["inputs"]
    if inputs.get("loadBalancerType", "application") != "application":
        raise _NotPriced(f"{inputs['loadBalancerType']} load balancers are not in the price table")
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


def _nat_gateway(r: dict, ctx: _Ctx) -> list[Charge]:
    nat = ctx.p["nat_gateway"]
    # The stack's NAT traffic is one figure; with a gateway per AZ it splits across them.
    share = ctx.usage.nat_gb_per_month / max(ctx.nat_gateways, 1)
    # Its public address is the EIP, priced on the EIP resource.
    return [
        Charge("NAT gateway hours", ctx.hours, "h", nat["hour"]),
        Charge("NAT data processed (usage.nat_gb_per_month share)", share, "GB", nat["gb_processed"]),
    ]


def _instance(r: dict, ctx: _Ctx) -> list[Charge]:
    inputs = r["inputs"]
    itype = inputs.get("instanceType")
    rate = ctx.p["ec2"].get(itype)
    if rate is None:
        raise _NotPriced(f"instance type {itype!r} is not in the price table")
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


def _ebs(ctx: _Ctx, what: str, size: float, vtype: str) -> Charge:
    rate = ctx.p["ebs"].get(vtype)
    return Charge(what, size, "GB-month", rate, "" if rate is not None else f"volume type {vtype!r} not in the table")


def _eip(r: dict, ctx: _Ctx) -> list[Charge]:
    inputs = r["inputs"]
    attached = "instance" if inputs.get("instance") else "NAT gateway or unattached"
    return [_ipv4(ctx, 1, f"Elastic IP, {attached}")]


def _vpc_endpoint(r: dict, ctx: _Ctx) -> list[Charge]:
    inputs = r["inputs"]
    if inputs.get("vpcEndpointType", "Gateway") == "Gateway":
        raise _Free("gateway endpoints (S3, DynamoDB) are free")
    zones = len(inputs.get("subnetIds") or [])
    return [
        Charge(f"interface endpoint hours ({zones} AZs)", zones * ctx.hours, "AZ-h", ctx.p["vpc_endpoint"]["interface_az_hour"]),
        Charge("interface endpoint data processed", 0, "GB", None, "no usage assumption"),
    ]


def _web_acl(r: dict, ctx: _Ctx) -> list[Charge]:
    tier = _flat_rate_plans(ctx).get(r.get("arn") or "")
    if tier:
        raise _Free(f"covered by the CloudFront flat-rate {tier} plan (priced on the subscription)")
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


def _flat_rate_plans(ctx: _Ctx) -> dict[str, str]:
    """ARN of each resource a CloudFront flat-rate plan covers -> the plan's tier."""
    covered: dict[str, str] = {}
    for sub in ctx.index.of_type("aws:pricingplanmanager/subscription:Subscription"):
        for arn in sub["inputs"].get("resourceArns") or []:
            covered[arn] = str(sub["inputs"].get("planTier"))
    return covered


def _subscription(r: dict, ctx: _Ctx) -> list[Charge]:
    tier = str(r["inputs"].get("planTier"))
    rate = ctx.p["cloudfront"]["flat_rate_month"].get(tier)
    if rate is None:
        raise _NotPriced(f"flat-rate tier {tier!r} is not in the price table")
    allowance = ctx.p["cloudfront"]["flat_rate_allowance"][tier]
    if ctx.usage.requests_per_month > allowance["requests"] or _edge_gb(ctx) > allowance["transfer_gb"]:
        note = " (usage exceeds the allowance: AWS throttles, so choose a larger tier)"
    else:
        note = ""
    return [Charge(f"CloudFront flat-rate {tier} plan: distribution, web ACL, their log ingestion{note}", 1,
                   "plan-month", rate)]


def _edge_gb(ctx: _Ctx) -> float:
    return float(getattr(ctx.usage, "edge_gb_per_month", 0) or 0)


def _distribution(r: dict, ctx: _Ctx) -> list[Charge]:
    tier = _flat_rate_plans(ctx).get(r.get("arn") or "")
    if tier:
        raise _Free(f"covered by its CloudFront flat-rate {tier} plan (priced on the subscription)")
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


def _ecs_cluster(r: dict, ctx: _Ctx) -> list[Charge]:
    settings = {s.get("name"): s.get("value") for s in r["inputs"].get("settings") or []}
    if settings.get("containerInsights") in ("enabled", "enhanced"):
        return [Charge("Container Insights metrics and performance logs", 1, "cluster", None,
                       "billed per metric and GB of performance logs: no usage assumption")]
    raise _Free("no charge for the cluster (Container Insights off)")


def _ecs_service(r: dict, ctx: _Ctx) -> list[Charge]:
    inputs = r["inputs"]
    task = ctx.index.get(inputs.get("taskDefinition"))
    if task is None:
        raise _NotPriced("its task definition is not in this stack")
    desired = float(inputs.get("desiredCount") or 0)  # the provider's default is 0
    strategy = _strategy(inputs, ctx)
    if strategy is None:
        raise _NotPriced("EC2 launch type: the instances are priced, not the service")
    unknown = [s["capacityProvider"] for s in strategy if s.get("capacityProvider") not in ("FARGATE", "FARGATE_SPOT")]
    if unknown:
        raise _NotPriced(f"capacity providers {unknown} run on EC2 capacity outside the price table")
    split = fargate_split(desired, strategy)
    vcpu, memory = _task_size(task["inputs"])
    arch = ((task["inputs"].get("runtimePlatform") or {}).get("cpuArchitecture") or "X86_64").upper()
    rates = ctx.p["fargate"].get(arch)
    if rates is None:
        raise _NotPriced(f"Fargate architecture {arch!r} is not in the price table")
    charges = []
    for provider, tasks in split.items():
        spot = provider == "FARGATE_SPOT"
        label = f"{arch} {'Spot' if spot else 'on-demand'}, {_num(tasks)} task(s)"
        charges.append(Charge(f"Fargate vCPU ({label} × {_num(vcpu)} vCPU)", tasks * vcpu * ctx.hours, "vCPU-h",
                              rates["spot_vcpu_hour" if spot else "vcpu_hour"]))
        charges.append(Charge(f"Fargate memory ({label} × {_num(memory)} GB)", tasks * memory * ctx.hours, "GB-h",
                              rates["spot_gb_hour" if spot else "gb_hour"]))
    return charges


def _strategy(service_inputs: dict, ctx: _Ctx) -> list[dict] | None:
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
        raise _NotPriced("task definition without task-level cpu/memory")
    return parse(task_inputs["cpu"], "vcpu"), parse(task_inputs["memory"], "gb")


def _rds_instance(r: dict, ctx: _Ctx) -> list[Charge]:
    inputs, rds = r["inputs"], ctx.p["rds"]
    engine, cls = inputs.get("engine", ""), inputs.get("instanceClass")
    rate = rds.get(engine, {}).get(cls)
    if rate is None:
        raise _NotPriced(f"{engine or 'unknown engine'} {cls} is not in the price table")
    copies = 2 if inputs.get("multiAz") else 1
    az = "multi-AZ: primary + standby" if copies == 2 else "single-AZ"
    storage_type = inputs.get("storageType") or rds["default_storage_type"]
    storage_rate = rds["storage_gb_month"].get(storage_type)
    size = float(inputs.get("allocatedStorage") or 0)
    charges = [
        Charge(f"RDS {cls} hours ({az})", copies * ctx.hours, "instance-h", rate),
        Charge(f"{storage_type} storage ({_num(size)} GB × {copies})", size * copies, "GB-month", storage_rate,
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


def _replication_group(r: dict, ctx: _Ctx) -> list[Charge]:
    inputs = r["inputs"]
    engine, node = (inputs.get("engine") or "redis").lower(), inputs.get("nodeType")
    rate = ctx.p["elasticache"].get(engine, {}).get(node)
    if rate is None:
        raise _NotPriced(f"{engine} {node} is not in the price table")
    if inputs.get("numCacheClusters"):
        nodes = int(inputs["numCacheClusters"])
    else:
        nodes = int(inputs.get("numNodeGroups") or 1) * (1 + int(inputs.get("replicasPerNodeGroup") or 0))
    return [Charge(f"ElastiCache {engine} {node} node-hours ({nodes} node(s))", nodes * ctx.hours, "node-h", rate)]


def _metric_alarm(r: dict, ctx: _Ctx) -> list[Charge]:
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


def _log_group(r: dict, ctx: _Ctx) -> list[Charge]:
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
    def price(r: dict, ctx: _Ctx) -> list[Charge]:
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
}


# --- the estimate --------------------------------------------------------------------------------

def estimate(document: SynthJson, usage: Usage, region: str, *, cloudwatch_free_tier: bool | None = None) -> Estimate:
    """Price every resource of a synth output for one region and a set of usage assumptions.

    `cloudwatch_free_tier`: credit CloudWatch's always-free tier (per account, so only when this
    stack has the account's tier to itself); default: the usage section's `cloudwatch_free_tier`
    field if the schema has one, else off.
    """
    table = prices(region)
    index = Index(document)
    ctx = _Ctx(index, table, usage)
    if cloudwatch_free_tier is None:
        cloudwatch_free_tier = bool(getattr(usage, "cloudwatch_free_tier", False))
    ctx.free_tiers = cloudwatch_free_tier
    layer_of = layers(document)
    costed = [_price(r, ctx, layer_of.get(r["urn"], "stack"), region) for r in document["resources"]
              if not is_component(r)]
    if cloudwatch_free_tier:
        costed.append(_free_tier_credit(costed, ctx))
    return Estimate(stack=document.get("stack", ""), region=region, resources=costed,
                    assumptions=_assumptions(usage, table, cloudwatch_free_tier),
                    basis=table["basis"], compiled=table["compiled"])


def _price(r: dict, ctx: _Ctx, layer: str, region: str) -> ResourceCost:
    token = r["type"]
    cost = ResourceCost(urn=r["urn"], name=r["name"], type=token, layer=layer, status="priced")
    own_region = r["inputs"].get("region")
    if own_region and own_region != region and token in PRICERS:
        cost.status, cost.reason = "not priced", f"placed in {own_region}, priced for {region} only"
        return cost
    if token in PRICERS:
        try:
            cost.charges = PRICERS[token](r, ctx)
        except _Free as free:
            cost.status, cost.reason = "free", str(free)
        except _NotPriced as unpriced:
            cost.status, cost.reason = "not priced", str(unpriced)
    elif token in FREE:
        cost.status, cost.reason = "free", FREE[token]
    elif token in UNPRICED:
        cost.status, cost.reason = "not priced", UNPRICED[token]
    else:
        cost.status, cost.reason = "not priced", "unknown resource type: add it to ops/review/cost.py (priced or free)"
    return cost


def _free_tier_credit(costed: list[ResourceCost], ctx: _Ctx) -> ResourceCost:
    cw = ctx.p["cloudwatch"]
    free = cw["free_tier"]
    standard = sum(c.quantity for r in costed for c in r.charges
                   if r.type == "aws:cloudwatch/metricAlarm:MetricAlarm" and c.unit_price == cw["alarm_metric_month"])
    dashboards = sum(1 for r in costed if r.type == "aws:cloudwatch/dashboard:Dashboard")
    logs = ctx.usage.log_gb_per_month
    return ResourceCost(
        urn="", name="CloudWatch always-free tier", type="credit", layer="free tier", status="priced",
        reason="stated per-stack assumption: this stack has the account's free tier to itself",
        charges=[
            Charge("free alarm metrics", min(standard, free["alarm_metrics"]), "alarm metric-month", -cw["alarm_metric_month"]),
            Charge("free dashboards", min(dashboards, free["dashboards"]), "dashboard-month", -cw["dashboard_month"]),
            Charge("free log ingestion", min(logs, free["logs_gb"]), "GB", -cw["logs_ingest_gb"]),
        ],
    )


def _assumptions(usage: Usage, table: dict[str, Any], free_tier: bool) -> list[str]:
    spot = table["fargate"]["spot_discount"]
    lines = [
        f"{table['hours_per_month']} hours per month; on-demand list prices, {table['region']}, compiled {table['compiled']}",
        f"requests: {usage.requests_per_month:,.0f}/month (usage.requests_per_month: CloudFront and WAF requests)",
        f"edge data transfer out: {_num(float(getattr(usage, 'edge_gb_per_month', 0) or 0))} GB/month "
        f"(usage.edge_gb_per_month); CloudFront's always-free tier credited with CloudWatch's",
        f"ALB: {_num(usage.alb_lcu)} LCU on average (usage.alb_lcu)",
        f"NAT gateway data processed: {_num(usage.nat_gb_per_month)} GB/month across all NAT gateways (usage.nat_gb_per_month)",
        f"logs: {_num(usage.log_gb_per_month)} GB/month ingested, split evenly over the log groups; stored volume = "
        f"ingestion × retention, uncompressed (usage.log_gb_per_month)",
        f"RDS backup storage beyond the free allowance: {_num(usage.backup_gb_beyond_free)} GB (usage.backup_gb_beyond_free)",
        f"Fargate Spot: on-demand × {1 - spot:.2f} (Spot prices float; AWS advertises up to {spot:.0%} off)",
        "Fargate: each service at its desired count (autoscaling may add tasks up to max_count); tasks per "
        "capacity provider: `base` first, the rest by weight (fractional = expected share)",
        "not priced anywhere: data transfer out to the internet and across AZs, NAT instance egress, one-off "
        "Fargate tasks (migrations), X-Ray traces, KMS and Secrets Manager API requests, ElastiCache snapshot storage",
        "CloudWatch always-free tier: " + ("credited (stated for this stack)" if free_tier else
                                           "not credited (it is per account, not per stack)"),
    ]
    return lines


# --- comparison ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeltaRow:
    urn: str
    name: str
    type: str
    layer: str
    change: Literal["added", "removed", "changed"]
    base: float
    head: float

    @property
    def delta(self) -> float:
        return self.head - self.base


@dataclass
class CostDelta:
    base_total: float
    head_total: float
    rows: list[DeltaRow]

    @property
    def total(self) -> float:
        return self.head_total - self.base_total


def compare(base: Estimate, head: Estimate) -> CostDelta:
    """Monthly delta per resource (by URN): added, removed, or changed in price."""
    before, after = base.by_urn(), head.by_urn()
    rows = []
    for urn in sorted(set(before) | set(after)):
        b, h = before.get(urn), after.get(urn)
        ref = h or b
        assert ref is not None
        if b is None:
            change: Literal["added", "removed", "changed"] = "added"
        elif h is None:
            change = "removed"
        elif abs(h.monthly - b.monthly) > 0.005 or h.status != b.status:
            change = "changed"
        else:
            continue
        rows.append(DeltaRow(urn, ref.name, ref.type, ref.layer, change,
                             b.monthly if b else 0.0, h.monthly if h else 0.0))
    rows.sort(key=lambda row: (-abs(row.delta), row.name))
    return CostDelta(base.total, head.total, rows)


# --- rendering ----------------------------------------------------------------------------------

def money(value: float) -> str:
    return f"${value:,.2f}"


def signed(value: float) -> str:
    """A delta with its sign always shown: +$1.20, -$3.00, ±$0.00."""
    if round(value, 2) == 0:
        return "±$0.00"
    return f"{'+' if value > 0 else '-'}${abs(value):,.2f}"


def md_escape(text: str) -> str:
    """GitHub renders `$...$` as math: dollar signs in Markdown text must be escaped."""
    return text.replace("$", "\\$")


def render_markdown(est: Estimate, delta: CostDelta | None = None, *, heading: str = "###") -> str:
    m = md_escape
    lines = [f"{heading} Monthly cost: {m(money(est.total))}" + (f" ({m(signed(delta.total))} vs base)" if delta else ""),
             "", "| layer | monthly |", "| --- | ---: |"]
    lines += [f"| {layer} | {m(money(value))} |" for layer, value in est.by_layer().items()]
    lines.append(f"| **total** | **{m(money(est.total))}** |")
    unpriced = est.not_priced()
    if unpriced:
        lines += ["", "Not priced (these cost money but are not in the total):"]
        lines += [f"- `{r.name}` (`{r.type}`): " + m(r.reason or "; ".join(f"{c.what}: {c.note}" for c in r.unpriced_parts))
                  for r in unpriced]
    if delta is not None:
        # Raw HTML: no Markdown (and no math) is rendered inside <summary>, so nothing to escape.
        lines += ["", f"<details><summary>Cost delta vs base: {signed(delta.total)} "
                      f"({money(delta.base_total)} → {money(delta.head_total)})</summary>", ""]
        if delta.rows:
            lines += ["| change | resource | type | base | head | delta |", "| --- | --- | --- | ---: | ---: | ---: |"]
            lines += [f"| {row.change} | `{row.name}` | `{row.type}` | {m(money(row.base))} | {m(money(row.head))} | "
                      f"{m(signed(row.delta))} |" for row in delta.rows]
        else:
            lines.append("No resource changes price.")
        lines += ["", "</details>"]
    lines += ["", "<details><summary>Per resource</summary>", "",
              "| layer | resource | type | monthly | how |", "| --- | --- | --- | ---: | --- |"]
    for r in est.priced():
        how = "<br>".join(m(f"{c.what}: {c.formula()}") for c in r.charges)
        lines.append(f"| {r.layer} | `{r.name}` | `{r.type}` | {m(money(r.monthly))} | {how} |")
    free: dict[str, int] = defaultdict(int)
    for r in est.resources:
        if r.status == "free":
            free[r.type] += 1
    if free:
        lines += ["", "Free: " + ", ".join(f"`{t}` ×{n}" for t, n in sorted(free.items()))]
    lines += ["", "</details>", "", "<details><summary>Assumptions and price source</summary>", ""]
    lines += [f"- {m(a)}" for a in est.assumptions]
    lines += [f"- prices: {m(est.basis)}", "", "</details>"]
    return "\n".join(lines)


def print_estimate(est: Estimate, delta: CostDelta | None = None) -> None:
    from rich.table import Table

    from ops.console import out

    table = Table(title=f"{est.stack}: {money(est.total)}/month at list price ({est.region}, prices of {est.compiled})")
    for column, justify in (("layer", "left"), ("resource", "left"), ("type", "left"), ("monthly", "right"),
                            ("how", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in est.priced():
        table.add_row(r.layer, r.name, r.type, money(r.monthly), "\n".join(f"{c.what}: {c.formula()}" for c in r.charges))
    for r in est.not_priced():
        reason = r.reason or "; ".join(f"{c.what}: {c.note}" for c in r.unpriced_parts)
        table.add_row(r.layer, r.name, r.type, "not priced", reason, style="yellow")
    out.print(table)
    layer_table = Table(title="per layer")
    layer_table.add_column("layer")
    layer_table.add_column("monthly", justify="right")
    for layer, value in est.by_layer().items():
        layer_table.add_row(layer, money(value))
    layer_table.add_row("total", money(est.total), style="bold")
    out.print(layer_table)
    if delta is not None:
        delta_table = Table(title=f"delta vs base: {signed(delta.total)} ({money(delta.base_total)} → {money(delta.head_total)})")
        for column in ("change", "resource", "type", "base", "head", "delta"):
            delta_table.add_column(column)
        for row in delta.rows:
            delta_table.add_row(row.change, row.name, row.type, money(row.base), money(row.head), signed(row.delta))
        out.print(delta_table)
    for line in est.assumptions:
        out.print(f"  assumption: {line}")


def command(stack: str, compare_file: str | None = None, synth_file: str | None = None, md: str | None = None) -> Estimate:
    """`invoke cost`: estimate a stack (synthesized now or read from --synth), optionally against a base."""
    from ops import stackfile
    from ops.review import load_base, load_synth

    config = stackfile.load(stack)
    head = estimate(load_synth(stack, synth_file), config.usage, config.region)
    # The base is priced with the head's usage assumptions: the delta is what the change itself costs.
    delta = compare(estimate(load_base(stack, compare_file), config.usage, config.region), head) if compare_file else None
    print_estimate(head, delta)
    if md:
        from ops.console import write_output

        write_output(md, render_markdown(head, delta, heading="##") + "\n")
        from ops.console import err

        err.print(f"wrote {md}")
    return head


def _layer_key(layer: str) -> tuple[int, str]:
    return (LAYER_ORDER.index(layer) if layer in LAYER_ORDER else len(LAYER_ORDER), layer)


def _num(value: float) -> str:
    return f"{value:,.4f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
