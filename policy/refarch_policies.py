"""The security baseline as CrossGuard policies: one policy per rule, importable without a server.

The same `POLICIES` run in two places: under `pulumi preview --policy-pack policy` (the engine
hands each validate function the resource's wire properties) and offline in `ops/policy_run.py`
over the synth JSON. Every message ends with a one-line remediation.

Two things the engine does that shape the code below:
- props arrive as read-only `Mapping`/`Sequence` proxies (never `dict`/`list`) that raise
  `UnknownValueError` when a value is not known yet (preview of a new resource). Resource checks
  let it propagate (the engine skips that resource); stack checks skip only the one resource.
- a resource policy sees one resource's inputs; rules that need siblings (the bucket and its
  encryption configuration, the ALB and its listeners) are `StackValidationPolicy`s.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

REQUIRED_TAGS = ("project", "stack", "environment", "managed-by")
# Environments where a missing WAF or TLS blocks the deploy; elsewhere it is advice.
STRICT_ENVIRONMENTS = frozenset({"prod", "staging"})
# Opt-out marker for a writable root file system: the tag's value is the reason.
WRITABLE_ROOT_TAG = "writable-root-reason"
TLS12_POLICY_PREFIXES = ("ELBSecurityPolicy-TLS13-1-2-", "ELBSecurityPolicy-TLS-1-2-", "ELBSecurityPolicy-FS-1-2-")
PUBLIC_PORTS = frozenset({80, 443})
ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})
FARGATE_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})
PROD_MIN_BACKUP_DAYS = 7
ADMIN_POLICY_SUFFIX = ":policy/AdministratorAccess"

# Type tokens. pulumi-aws registers the ALB resources under both `lb` and `alb`.
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
RDS_CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
RDS_SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
CACHE_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_CLUSTER = "aws:elasticache/cluster:Cluster"
CACHE_SUBNET_GROUP = "aws:elasticache/subnetGroup:SubnetGroup"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
SNS_TOPIC = "aws:sns/topic:Topic"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
EC2_INSTANCE = "aws:ec2/instance:Instance"
EBS_VOLUME = "aws:ebs/volume:Volume"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
DEFAULT_ROUTE_TABLE = "aws:ec2/defaultRouteTable:DefaultRouteTable"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
MAIN_ROUTE_TABLE_ASSOCIATION = "aws:ec2/mainRouteTableAssociation:MainRouteTableAssociation"
SECURITY_GROUPS = ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
LISTENER_RULES = ("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
ECS_SERVICE = "aws:ecs/service:Service"
ECS_TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ECS_CLUSTER_CAPACITY = "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders"
ECS_CAPACITY_PROVIDER = "aws:ecs/capacityProvider:CapacityProvider"
IAM_POLICY_DOCUMENTS = (
    "aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy", "aws:iam/groupPolicy:GroupPolicy",
)
IAM_ROLE = "aws:iam/role:Role"
IAM_ATTACHMENTS = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment", "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
)


# --- reading wire properties (Mapping/Sequence proxies, never dict/list) -----------------------

def _is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _get(value: Any, *path: str | int) -> Any:
    """Walk keys and indexes; None as soon as one is missing."""
    for key in path:
        if isinstance(key, int):
            if not _is_list(value) or key >= len(value):
                return None
            value = value[key]
        else:
            if not _is_map(value) or key not in value:
                return None
            value = value[key]
    return value


def _items(value: Any) -> list[Any]:
    """A list property, or a single nested block the provider may send unwrapped."""
    if value is None:
        return []
    if _is_list(value):
        return list(value)
    return [value]


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _document(value: Any) -> Any:
    """A JSON document property (IAM policy, container definitions): parsed, or None if unreadable."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _tags(props: Mapping[str, Any]) -> Mapping[str, Any]:
    tags = props.get("tags")
    if isinstance(tags, Mapping):
        return tags
    return {}


def _environment(props: Mapping[str, Any]) -> str | None:
    value = _tags(props).get("environment")
    return value if isinstance(value, str) else None


def _label(resource: PolicyResource) -> str:
    return f"{resource.resource_type.rsplit(':', 1)[-1]} '{resource.name}'"


# --- policy builders ---------------------------------------------------------------------------

ResourceCheck = Callable[[ResourceValidationArgs], Iterable[str]]


@dataclass(frozen=True)
class Finding:
    """One stack-policy violation: the message, the resource it concerns, that resource's environment."""

    message: str
    urn: str | None
    environment: str | None = None


StackCheck = Callable[["Stack"], Iterable[Finding]]


def resource_policy(name: str, description: str, level: EnforcementLevel, types: Sequence[str],
                    check: ResourceCheck) -> ResourceValidationPolicy:
    wanted = frozenset(types)

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type in wanted:
            for message in check(args):
                report(message, None)

    return ResourceValidationPolicy(name=name, description=description, enforcement_level=level, validate=validate)


def stack_policy(name: str, description: str, level: EnforcementLevel, check: StackCheck,
                 environments: Callable[[str | None], bool] = lambda env: True) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for finding in check(Stack(args.resources)):
            if environments(finding.environment):
                report(finding.message, finding.urn)

    return StackValidationPolicy(name=name, description=description, enforcement_level=level, validate=validate)


def by_environment(name: str, description: str, check: StackCheck) -> list[StackValidationPolicy]:
    """One rule as two policies: mandatory in prod/staging, advisory anywhere else.

    An enforcement level belongs to a policy, not to a violation; splitting keeps the real pack
    and the offline run in agreement without pack configuration.
    """
    return [
        stack_policy(name, f"{description} (mandatory in {', '.join(sorted(STRICT_ENVIRONMENTS))})",
                     MANDATORY, check, lambda env: env in STRICT_ENVIRONMENTS),
        stack_policy(f"{name}-advisory", f"{description} (advice outside prod and staging)",
                     ADVISORY, check, lambda env: env not in STRICT_ENVIRONMENTS),
    ]


class Stack:
    """The stack's resources with the lookups the cross-resource rules share."""

    def __init__(self, resources: Sequence[PolicyResource]):
        self.resources = list(resources)

    def of(self, *types: str) -> Iterator[PolicyResource]:
        return (r for r in self.resources if r.resource_type in types)

    def known(self, *types: str) -> Iterator[tuple[PolicyResource, Mapping[str, Any]]]:
        """Resources of these types with their props (checks go through `_guarded`/`collect`)."""
        for resource in self.of(*types):
            yield resource, resource.props

    def collect(self, types: Sequence[str], read: Callable[[Mapping[str, Any]], Any]) -> list[tuple[PolicyResource, Any]]:
        """`read(props)` of each resource of these types; those with a value unknown at preview are left out."""
        found = []
        for resource in self.of(*types):
            try:
                found.append((resource, read(resource.props)))
            except UnknownValueError:
                continue
        return found

    def index(self, types: Sequence[str], *keys: str) -> dict[Any, PolicyResource]:
        """Resources by each of their identifying properties (id, arn, name...)."""
        found: dict[Any, PolicyResource] = {}
        for resource in self.of(*types):
            for key in keys:
                try:
                    value = resource.props.get(key)
                except UnknownValueError:
                    continue
                if isinstance(value, str) and value:
                    found[value] = resource
        return found


def _guarded(check: Callable[[PolicyResource, Mapping[str, Any]], Iterable[Finding]],
             resources: Iterable[tuple[PolicyResource, Mapping[str, Any]]]) -> Iterator[Finding]:
    # A value unknown at preview makes one resource unverifiable, not the whole stack.
    for resource, props in resources:
        try:
            yield from list(check(resource, props))
        except UnknownValueError:
            continue


# --- encryption at rest and in transit ---------------------------------------------------------

def _rds_encrypted(args: ResourceValidationArgs) -> Iterator[str]:
    if not _true(args.props.get("storageEncrypted")):
        yield (f"Database '{args.name}' stores data unencrypted (storageEncrypted is not true). "
               "Set storage_encrypted=True with kms_key_id set to the stack KMS key.")


def _cache_at_rest(args: ResourceValidationArgs) -> Iterator[str]:
    props = args.props
    if args.resource_type == CACHE_CLUSTER:
        if not props.get("replicationGroupId") and props.get("engine") != "memcached":
            yield (f"Cache cluster '{args.name}' is a standalone node, which ElastiCache cannot encrypt at rest. "
                   "Use an aws.elasticache.ReplicationGroup with at_rest_encryption_enabled=True.")
        return
    if not _true(props.get("atRestEncryptionEnabled")):
        yield (f"Cache '{args.name}' stores data unencrypted (atRestEncryptionEnabled is not true). "
               "Set at_rest_encryption_enabled=True and kms_key_id to the stack KMS key.")


def _cache_in_transit(args: ResourceValidationArgs) -> Iterator[str]:
    if args.resource_type == CACHE_CLUSTER and args.props.get("replicationGroupId"):
        return  # a member of a replication group inherits the group's setting
    if not _true(args.props.get("transitEncryptionEnabled")):
        yield (f"Cache '{args.name}' accepts plaintext connections (transitEncryptionEnabled is not true). "
               "Set transit_encryption_enabled=True and have clients connect with TLS.")


def _sns_encrypted(args: ResourceValidationArgs) -> Iterator[str]:
    if not args.props.get("kmsMasterKeyId"):
        yield (f"Topic '{args.name}' stores messages unencrypted (no kmsMasterKeyId). "
               "Set kms_master_key_id to the stack KMS key.")


def _log_retention(args: ResourceValidationArgs) -> Iterator[str]:
    days = _int(args.props.get("retentionInDays"))
    if not days:
        yield (f"Log group '{args.name}' keeps logs forever (retentionInDays is not set). "
               "Set retention_in_days from the stack's monitoring.log_retention_days.")


def _log_kms(args: ResourceValidationArgs) -> Iterator[str]:
    if not args.props.get("kmsKeyId"):
        yield (f"Log group '{args.name}' is encrypted only with the CloudWatch Logs service key. "
               "Set kms_key_id to the stack KMS key if its events may carry sensitive data.")


def _ebs_encrypted(args: ResourceValidationArgs) -> Iterator[str]:
    props = args.props
    if args.resource_type == EBS_VOLUME:
        if not _true(props.get("encrypted")):
            yield f"Volume '{args.name}' is not encrypted. Set encrypted=True."
        return
    if not _true(_get(props, "rootBlockDevice", "encrypted")):
        yield (f"Instance '{args.name}' has an unencrypted (or account-default) root volume. "
               "Set root_block_device.encrypted=True.")
    for device in _items(props.get("ebsBlockDevices")):
        if not _true(_get(device, "encrypted")):
            yield (f"Instance '{args.name}' attaches unencrypted volume {_get(device, 'deviceName')}. "
                   "Set encrypted=True on every ebs_block_devices entry.")


def _buckets_encrypted(stack: Stack) -> Iterator[Finding]:
    def encrypted_bucket(props: Mapping[str, Any]) -> Any:
        algorithms = [_get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
                      for rule in _items(props.get("rules"))]
        return props.get("bucket") if any(algorithms) else None

    configured = {bucket for _, bucket in stack.collect(BUCKET_SSE, encrypted_bucket) if isinstance(bucket, str)}

    def check(bucket: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        names = {props.get("id"), props.get("bucket")} - {None}
        inline = _get(props, "serverSideEncryptionConfiguration", "rule", "applyServerSideEncryptionByDefault",
                      "sseAlgorithm")
        if not names & configured and not inline:
            yield Finding(f"Bucket '{bucket.name}' has no server-side encryption configuration. "
                          "Add an aws.s3.BucketServerSideEncryptionConfiguration for it (aws:kms, or AES256 "
                          "where the writing service cannot use KMS).", bucket.urn, _environment(props))

    yield from _guarded(check, stack.known(*BUCKETS))


def _force_ssl(stack: Stack) -> Iterator[Finding]:
    groups = stack.index([RDS_PARAMETER_GROUP, RDS_CLUSTER_PARAMETER_GROUP], "name", "id")

    def forced(group: PolicyResource) -> bool:
        return any(_get(p, "name") == "rds.force_ssl" and str(_get(p, "value")) == "1"
                   for p in _items(group.props.get("parameters")))

    def check(db: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        engine = str(props.get("engine") or "")
        if "postgres" not in engine:
            return
        key = "dbClusterParameterGroupName" if db.resource_type == RDS_CLUSTER else "parameterGroupName"
        group_name = props.get(key)
        group = groups.get(group_name) if isinstance(group_name, str) else None
        if group is None:
            problem = (f"uses parameter group {group_name!r}, which this stack does not define" if group_name
                       else "uses the engine's default parameter group")
            yield Finding(f"PostgreSQL database '{db.name}' {problem}, so TLS cannot be shown to be required. "
                          "Give it a parameter group of this stack that sets rds.force_ssl=1.",
                          db.urn, _environment(props))
        elif not forced(group):
            yield Finding(f"PostgreSQL database '{db.name}' accepts plaintext connections: parameter group "
                          f"'{group.name}' does not set rds.force_ssl=1. Add the parameter rds.force_ssl=1 "
                          "(apply_method immediate) to that group.", db.urn, _environment(props))

    yield from _guarded(check, stack.known(RDS_INSTANCE, RDS_CLUSTER))


# --- network exposure --------------------------------------------------------------------------

def _db_not_public(args: ResourceValidationArgs) -> Iterator[str]:
    if _true(args.props.get("publiclyAccessible")):
        yield (f"Database '{args.name}' gets a public endpoint (publiclyAccessible is true). "
               "Set publicly_accessible=False; services reach it inside the VPC.")


def _isolated_subnets(stack: Stack) -> Iterator[Finding]:
    """Data stores only in subnets whose route table has no way out of the VPC.

    A subnet without an explicit association uses its VPC's main table; AWS creates that with the
    local route only, unless this stack replaced or changed it.
    """
    subnets = stack.index([SUBNET], "id")
    explicit = dict(v for _, v in stack.collect([ROUTE_TABLE_ASSOCIATION],
                                                lambda p: (p.get("subnetId"), p.get("routeTableId"))))
    main = dict(v for _, v in stack.collect([MAIN_ROUTE_TABLE_ASSOCIATION],
                                            lambda p: (p.get("vpcId"), p.get("routeTableId"))))
    exits: dict[Any, list[str]] = {}
    for table_id, table in stack.index([ROUTE_TABLE, DEFAULT_ROUTE_TABLE], "id", "defaultRouteTableId").items():
        try:
            exits[table_id] = [e for route in _items(table.props.get("routes"))
                               for e in _exit(route, "cidrBlock", "ipv6CidrBlock")]
        except UnknownValueError:
            exits[table_id] = []
    for _, (table_id, found) in stack.collect(
            [ROUTE], lambda p: (p.get("routeTableId"), _exit(p, "destinationCidrBlock", "destinationIpv6CidrBlock"))):
        exits.setdefault(table_id, []).extend(found)

    def subnet_problem(subnet_id: Any) -> str | None:
        subnet = subnets.get(subnet_id)
        if subnet is None:
            return f"subnet {subnet_id} is not managed by this stack, so its routes cannot be checked"
        table = explicit.get(subnet_id, main.get(subnet.props.get("vpcId")))
        routes = exits.get(table, [])
        return f"subnet '{subnet.name}' routes {', '.join(routes)}" if routes else None

    def check(group: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        problems = [p for p in (subnet_problem(s) for s in _items(props.get("subnetIds"))) if p]
        if problems:
            yield Finding(f"Subnet group '{group.name}' places a data store outside isolated subnets: "
                          f"{'; '.join(problems)}. Use only the isolated subnets (no internet or NAT route).",
                          group.urn, _environment(props))

    def unplaced(store: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        key = "subnetGroupName" if store.resource_type == CACHE_GROUP else "dbSubnetGroupName"
        if not props.get(key):
            yield Finding(f"{_label(store)} has no subnet group, so AWS places it in the default VPC. "
                          f"Set {key} to a subnet group of the isolated subnets.", store.urn, _environment(props))

    yield from _guarded(check, stack.known(RDS_SUBNET_GROUP, CACHE_SUBNET_GROUP))
    yield from _guarded(unplaced, stack.known(RDS_INSTANCE, RDS_CLUSTER, CACHE_GROUP))


def _exit(route: Any, v4: str, v6: str) -> list[str]:
    """How a route leaves the VPC, if it does: a default route, or anything through an IGW."""
    destination = _get(route, v4) or _get(route, v6)
    gateway = str(_get(route, "gatewayId") or "")
    if destination in ANYWHERE or gateway.startswith("igw-"):
        return [f"{destination} to {gateway or _target(route)}"]
    return []


def _target(route: Any) -> str:
    for key in ("natGatewayId", "networkInterfaceId", "transitGatewayId", "vpcPeeringConnectionId",
                "egressOnlyGatewayId", "vpcEndpointId"):
        if _get(route, key):
            return str(_get(route, key))
    return "a gateway"


def _public_ingress(stack: Stack) -> Iterator[Finding]:
    alb_groups = {group for _, groups in stack.collect(
        LOAD_BALANCERS, lambda p: list(_items(p.get("securityGroups"))) if _internet_facing_alb(p) else [])
        for group in groups if isinstance(group, str)}

    def allowed(group_id: Any, protocol: Any, from_port: Any, to_port: Any) -> bool:
        port = _int(from_port)
        return (group_id in alb_groups and str(protocol).lower() in ("tcp", "6")
                and port in PUBLIC_PORTS and _int(to_port) == port)

    def finding(what: str, group_id: Any, ports: str, resource: PolicyResource, env: str | None) -> Finding:
        return Finding(f"{what} opens {ports} to the whole internet on security group {group_id}; only the "
                       "internet-facing ALB may, on 80/443. Restrict the source to a security group or a "
                       "known CIDR.", resource.urn, env)

    def inline(group: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        for rule in _items(props.get("ingress")):
            sources = set(_items(_get(rule, "cidrBlocks"))) | set(_items(_get(rule, "ipv6CidrBlocks")))
            protocol, low, high = _get(rule, "protocol"), _get(rule, "fromPort"), _get(rule, "toPort")
            if sources & ANYWHERE and not allowed(props.get("id"), protocol, low, high):
                yield finding(f"{_label(group)} (inline rule)", props.get("id"),
                              _ports(protocol, low, high), group, _environment(props))

    def vpc_rule(rule: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        sources = {props.get("cidrIpv4"), props.get("cidrIpv6")}
        protocol, low, high = props.get("ipProtocol"), props.get("fromPort"), props.get("toPort")
        group_id = props.get("securityGroupId")
        if sources & ANYWHERE and not allowed(group_id, protocol, low, high):
            yield finding(_label(rule), group_id, _ports(protocol, low, high), rule, _environment(props))

    def ec2_rule(rule: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        if props.get("type") != "ingress":
            return
        sources = set(_items(props.get("cidrBlocks"))) | set(_items(props.get("ipv6CidrBlocks")))
        protocol, low, high = props.get("protocol"), props.get("fromPort"), props.get("toPort")
        group_id = props.get("securityGroupId")
        if sources & ANYWHERE and not allowed(group_id, protocol, low, high):
            yield finding(_label(rule), group_id, _ports(protocol, low, high), rule, None)

    yield from _guarded(inline, stack.known(*SECURITY_GROUPS))
    yield from _guarded(vpc_rule, stack.known(SG_INGRESS_RULE))
    yield from _guarded(ec2_rule, stack.known(SG_RULE))


def _ports(protocol: Any, low: Any, high: Any) -> str:
    if str(protocol) in ("-1", "all"):
        return "all ports"
    return f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"


def _internet_facing_alb(props: Mapping[str, Any]) -> bool:
    return props.get("loadBalancerType") in (None, "application") and not _true(props.get("internal"))


# --- the load balancer: TLS, redirect, WAF -----------------------------------------------------

def _listener_tls(args: ResourceValidationArgs) -> Iterator[str]:
    props = args.props
    if props.get("protocol") not in ("HTTPS", "TLS"):
        return
    policy = props.get("sslPolicy")
    if not isinstance(policy, str) or not policy.startswith(TLS12_POLICY_PREFIXES):
        shown = policy or "the ELB default (ELBSecurityPolicy-2016-08, TLS 1.0)"
        yield (f"Listener '{args.name}' negotiates with {shown}, which allows TLS below 1.2. "
               "Set ssl_policy to ELBSecurityPolicy-TLS13-1-2-2021-06.")


def _listeners_by_lb(stack: Stack) -> dict[Any, list[PolicyResource]]:
    by_lb: dict[Any, list[PolicyResource]] = {}
    for listener, lb_arn in stack.collect(LISTENERS, lambda p: p.get("loadBalancerArn")):
        by_lb.setdefault(lb_arn, []).append(listener)
    return by_lb


def _http_redirects(stack: Stack) -> Iterator[Finding]:
    by_lb = _listeners_by_lb(stack)
    rules: dict[Any, list[PolicyResource]] = {}
    for rule, listener_arn in stack.collect(LISTENER_RULES, lambda p: p.get("listenerArn")):
        rules.setdefault(listener_arn, []).append(rule)

    def redirects(actions: Any) -> bool:
        actions = _items(actions)
        return bool(actions) and all(_get(a, "type") == "redirect" and _get(a, "redirect", "protocol") == "HTTPS"
                                     for a in actions)

    def check(lb: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        listeners = by_lb.get(props.get("arn"), [])
        if not any(listener.props.get("protocol") == "HTTPS" for listener in listeners):
            return
        for listener in listeners:
            if listener.props.get("protocol") != "HTTP":
                continue
            if not redirects(listener.props.get("defaultActions")):
                yield Finding(f"Listener '{listener.name}' serves plain HTTP on a load balancer that has HTTPS. "
                              "Make its default action a redirect to HTTPS (port 443, HTTP_301).",
                              listener.urn, _environment(props))
            for rule in rules.get(listener.props.get("arn"), []):
                if not redirects(rule.props.get("actions")):
                    yield Finding(f"Listener rule '{rule.name}' forwards plain HTTP traffic past the HTTPS "
                                  "redirect. Attach the rule to the HTTPS listener instead.",
                                  rule.urn, _environment(props))

    yield from _guarded(check, stack.known(*LOAD_BALANCERS))


def _alb_tls(stack: Stack) -> Iterator[Finding]:
    by_lb = _listeners_by_lb(stack)

    def check(lb: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        if not _internet_facing_alb(props):
            return
        if not any(listener.props.get("protocol") == "HTTPS" for listener in by_lb.get(props.get("arn"), [])):
            yield Finding(f"No TLS: load balancer '{lb.name}' has no HTTPS listener, so traffic crosses the "
                          "internet in plaintext. Set gateway.domain (with hosted_zone_id) or "
                          "gateway.certificate_arn in the stack file.", lb.urn, _environment(props))

    yield from _guarded(check, stack.known(*LOAD_BALANCERS))


def _alb_waf(stack: Stack) -> Iterator[Finding]:
    protected = {arn for _, arn in stack.collect([WAF_ASSOCIATION], lambda p: p.get("resourceArn"))}

    def check(lb: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        if _internet_facing_alb(props) and props.get("arn") not in protected:
            yield Finding(f"Load balancer '{lb.name}' has no WAF web ACL associated. "
                          "Set gateway.waf: true in the stack file (it associates the managed rule groups "
                          "and rate limit).", lb.urn, _environment(props))

    yield from _guarded(check, stack.known(*LOAD_BALANCERS))


# --- ECS tasks -----------------------------------------------------------------------------------

def _no_public_ip(args: ResourceValidationArgs) -> Iterator[str]:
    if _true(_get(args.props, "networkConfiguration", "assignPublicIp")):
        yield (f"Service '{args.name}' gives its tasks public IPs. "
               "Set network_configuration.assign_public_ip=False and run tasks in private subnets.")


def _containers(args: ResourceValidationArgs) -> list[Any]:
    containers = _document(args.props.get("containerDefinitions"))
    return [c for c in _items(containers) if _is_map(c)]


def _not_privileged(args: ResourceValidationArgs) -> Iterator[str]:
    for container in _containers(args):
        if _true(_get(container, "privileged")):
            yield (f"Container '{_get(container, 'name')}' of task definition '{args.name}' runs privileged. "
                   "Remove privileged=true; grant the single Linux capability it needs instead.")


def _read_only_root(args: ResourceValidationArgs) -> Iterator[str]:
    reason = _tags(args.props).get(WRITABLE_ROOT_TAG)
    if isinstance(reason, str) and reason.strip():
        return
    for container in _containers(args):
        if not _true(_get(container, "readonlyRootFilesystem")):
            yield (f"Container '{_get(container, 'name')}' of task definition '{args.name}' has a writable root "
                   f"file system and the task definition has no '{WRITABLE_ROOT_TAG}' tag. Set "
                   "readonlyRootFilesystem=true (mount a volume for scratch space), or opt out with "
                   "read_only_root_filesystem: false and writable_root_reason in the stack file.")


def _fargate_only(args: ResourceValidationArgs) -> Iterator[str]:
    props, kind = args.props, args.resource_type
    if kind == ECS_CAPACITY_PROVIDER:
        yield (f"Capacity provider '{args.name}' adds EC2 capacity to ECS. "
               "Remove it; run tasks on FARGATE or FARGATE_SPOT.")
    elif kind == ECS_TASK_DEFINITION:
        compat = [c for c in _items(props.get("requiresCompatibilities")) if isinstance(c, str)]
        if compat != ["FARGATE"]:
            yield (f"Task definition '{args.name}' requires compatibilities {compat or 'unset (EC2)'}. "
                   "Set requires_compatibilities=['FARGATE'].")
    elif kind == ECS_CLUSTER_CAPACITY:
        providers = set(_items(props.get("capacityProviders")))
        providers |= {_get(s, "capacityProvider") for s in _items(props.get("defaultCapacityProviderStrategies"))}
        if providers - FARGATE_PROVIDERS:
            yield (f"Cluster capacity providers '{args.name}' include {sorted(map(str, providers - FARGATE_PROVIDERS))}. "
                   "Use only FARGATE and FARGATE_SPOT.")
    elif kind == ECS_SERVICE:
        launch = props.get("launchType")
        strategy = {_get(s, "capacityProvider") for s in _items(props.get("capacityProviderStrategies"))}
        if launch is not None and launch != "FARGATE":
            yield f"Service '{args.name}' launches on {launch}. Set launch_type='FARGATE' or a Fargate capacity strategy."
        elif strategy - FARGATE_PROVIDERS:
            yield (f"Service '{args.name}' uses capacity providers {sorted(map(str, strategy - FARGATE_PROVIDERS))}. "
                   "Use only FARGATE and FARGATE_SPOT in capacity_provider_strategies.")
        elif launch is None and not strategy:
            yield (f"Service '{args.name}' sets neither a launch type nor a capacity strategy, so its capacity "
                   "depends on the cluster default. Set capacity_provider_strategies with FARGATE/FARGATE_SPOT.")


# --- IAM -----------------------------------------------------------------------------------------

def _admin_statements(document: Any) -> list[str]:
    """Sids (or positions) of statements that allow every action on every resource."""
    found = []
    for i, statement in enumerate(_items(_get(document, "Statement"))):
        if _get(statement, "Effect") != "Allow":
            continue
        resources = set(_items(_get(statement, "Resource")))
        actions = set(_items(_get(statement, "Action")))
        everything = bool(actions & {"*", "*:*"}) or _get(statement, "NotAction") is not None
        if everything and "*" in resources:
            found.append(str(_get(statement, "Sid") or f"#{i}"))
    return found


def _iam_no_admin(args: ResourceValidationArgs) -> Iterator[str]:
    props, kind = args.props, args.resource_type
    documents: list[tuple[str, Any]] = []
    if kind in IAM_POLICY_DOCUMENTS:
        documents.append(("its policy", props.get("policy")))
    elif kind == IAM_ROLE:
        for inline in _items(props.get("inlinePolicies")):
            documents.append((f"inline policy {_get(inline, 'name')!r}", _get(inline, "policy")))
        if any(str(arn).endswith(ADMIN_POLICY_SUFFIX) for arn in _items(props.get("managedPolicyArns"))):
            yield (f"Role '{args.name}' has AdministratorAccess attached. "
                   "Attach a policy that lists the actions and resources the role needs.")
    elif kind in IAM_ATTACHMENTS:
        if str(props.get("policyArn") or "").endswith(ADMIN_POLICY_SUFFIX):
            yield (f"Attachment '{args.name}' grants AdministratorAccess. "
                   "Attach a policy that lists the actions and resources the principal needs.")
    for where, raw in documents:
        document = _document(raw)
        if raw is not None and document is None:
            yield f"{args.name}: {where} is not valid JSON. Fix the policy document."
            continue
        statements = _admin_statements(document)
        if statements:
            yield (f"{_label_of(args)} allows every action on every resource in {where} "
                   f"(statement {', '.join(statements)}). List the actions and resource ARNs it needs.")


def _label_of(args: ResourceValidationArgs) -> str:
    return f"{args.resource_type.rsplit(':', 1)[-1]} '{args.name}'"


# --- prod protections, tags ----------------------------------------------------------------------

def _prod_protected(args: ResourceValidationArgs) -> Iterator[str]:
    props, kind = args.props, args.resource_type
    if _environment(props) != "prod":
        return
    if kind in (RDS_INSTANCE, RDS_CLUSTER):
        if not _true(props.get("deletionProtection")):
            yield (f"Prod database '{args.name}' can be deleted by one API call (deletionProtection is not true). "
                   "Set database.deletion_protection: true.")
        days = _int(props.get("backupRetentionPeriod"))
        if days is None or days < PROD_MIN_BACKUP_DAYS:
            yield (f"Prod database '{args.name}' keeps {days or 0} days of backups. "
                   f"Set database.backup_retention_days to at least {PROD_MIN_BACKUP_DAYS}.")
    elif kind == CACHE_GROUP:
        if (_int(props.get("snapshotRetentionLimit")) or 0) < 1:
            yield (f"Prod cache '{args.name}' keeps no snapshots. "
                   "Set cache.snapshot_retention_days to at least 1.")
    elif kind in LOAD_BALANCERS:
        if not _true(props.get("enableDeletionProtection")):
            yield (f"Prod load balancer '{args.name}' can be deleted by one API call. "
                   "Set gateway.deletion_protection: true.")


@cache
def taggable(type_token: str) -> bool:
    """Whether the SDK class behind a type token has a `tags` property.

    The same rule as `ops.mocks.has_property(token, "tags")`, repeated here because the pack runs
    in its own virtualenv without the repository's packages.
    """
    import importlib

    package, _, rest = type_token.partition(":")
    module, _, name = rest.partition(":")
    path = f"pulumi_{package}" + ("" if module.split("/")[0] == "index" else f".{module.split('/')[0]}")
    try:
        with warnings.catch_warnings():
            # Importing an SDK module announces every deprecated class in it: not our concern here.
            warnings.simplefilter("ignore", DeprecationWarning)
            cls = getattr(importlib.import_module(path), name, None)
    except ImportError:
        return False
    return cls is not None and isinstance(getattr(cls, "tags", None), property)


def _required_tags(args: ResourceValidationArgs) -> Iterator[str]:
    if not args.resource_type.startswith("aws:") or not taggable(args.resource_type):
        return
    # Tags the provider adds to everything (default_tags) count as the resource's own.
    defaults = _get(args.provider.props, "defaultTags", "tags") if args.provider is not None else None
    sources: list[Mapping[str, Any]] = [_tags(args.props)]
    if isinstance(defaults, Mapping):
        sources.append(defaults)
    present = {key for tags in sources for key in tags if _has_value(tags, key)}
    missing = [tag for tag in REQUIRED_TAGS if tag not in present]
    if missing:
        yield (f"{_label_of(args)} lacks the tags {', '.join(missing)}. "
               "Pass tags=infra.tags.base_tags(...) (plus Name) to the resource.")


def _has_value(tags: Mapping[str, Any], key: str) -> bool:
    try:
        value = tags[key]
    except UnknownValueError:
        return True  # computed at preview: present, value to be known at update
    return isinstance(value, str) and bool(value.strip())


# --- the pack's policies -------------------------------------------------------------------------

POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    resource_policy("rds-encrypted-at-rest", "RDS storage is encrypted at rest.",
                    MANDATORY, [RDS_INSTANCE, RDS_CLUSTER], _rds_encrypted),
    resource_policy("cache-encrypted-at-rest", "ElastiCache data is encrypted at rest.",
                    MANDATORY, [CACHE_GROUP, CACHE_CLUSTER], _cache_at_rest),
    resource_policy("cache-encrypted-in-transit", "ElastiCache accepts TLS connections only.",
                    MANDATORY, [CACHE_GROUP, CACHE_CLUSTER], _cache_in_transit),
    stack_policy("s3-bucket-encrypted", "Every S3 bucket has a server-side encryption configuration.",
                 MANDATORY, _buckets_encrypted),
    resource_policy("sns-topic-encrypted", "SNS topics are encrypted with a KMS key.",
                    MANDATORY, [SNS_TOPIC], _sns_encrypted),
    resource_policy("ebs-encrypted", "EC2 instance and EBS volumes are encrypted.",
                    MANDATORY, [EC2_INSTANCE, EBS_VOLUME], _ebs_encrypted),
    resource_policy("log-group-retention", "Every log group has a retention period.",
                    MANDATORY, [LOG_GROUP], _log_retention),
    resource_policy("log-group-kms", "Log groups are encrypted with a customer-managed KMS key.",
                    ADVISORY, [LOG_GROUP], _log_kms),
    stack_policy("rds-force-ssl", "Every PostgreSQL database requires TLS (rds.force_ssl=1).",
                 MANDATORY, _force_ssl),
    resource_policy("db-not-public", "No database has a public endpoint.",
                    MANDATORY, [RDS_INSTANCE, RDS_CLUSTER_INSTANCE], _db_not_public),
    stack_policy("data-stores-isolated", "Databases and caches live only in subnets with no route out of the VPC.",
                 MANDATORY, _isolated_subnets),
    stack_policy("sg-no-public-ingress",
                 "No security group admits 0.0.0.0/0 or ::/0, except the internet-facing ALB on 80/443.",
                 MANDATORY, _public_ingress),
    resource_policy("alb-https-tls12", "HTTPS listeners use a TLS 1.2+ security policy.",
                    MANDATORY, list(LISTENERS), _listener_tls),
    stack_policy("alb-http-redirects-to-https",
                 "On a load balancer with HTTPS, HTTP only redirects to HTTPS.", MANDATORY, _http_redirects),
    *by_environment("alb-tls", "Every internet-facing ALB terminates TLS.", _alb_tls),
    *by_environment("alb-waf", "Every internet-facing ALB has a WAF web ACL.", _alb_waf),
    resource_policy("ecs-no-public-ip", "ECS tasks get no public IP.", MANDATORY, [ECS_SERVICE], _no_public_ip),
    resource_policy("ecs-not-privileged", "No ECS container runs privileged.",
                    MANDATORY, [ECS_TASK_DEFINITION], _not_privileged),
    resource_policy("ecs-read-only-root",
                    f"ECS containers have a read-only root file system unless tagged {WRITABLE_ROOT_TAG}.",
                    MANDATORY, [ECS_TASK_DEFINITION], _read_only_root),
    resource_policy("ecs-fargate-only", "ECS capacity is Fargate only.", MANDATORY,
                    [ECS_SERVICE, ECS_TASK_DEFINITION, ECS_CLUSTER_CAPACITY, ECS_CAPACITY_PROVIDER], _fargate_only),
    resource_policy("iam-no-admin", "No IAM policy allows every action on every resource.", MANDATORY,
                    [*IAM_POLICY_DOCUMENTS, IAM_ROLE, *IAM_ATTACHMENTS], _iam_no_admin),
    resource_policy("prod-stateful-protected",
                    "Prod databases, caches and load balancers have deletion protection and backups.",
                    MANDATORY, [RDS_INSTANCE, RDS_CLUSTER, CACHE_GROUP, *LOAD_BALANCERS], _prod_protected),
    # Tags apply to every taggable type: the type filter is `taggable`, not a list.
    ResourceValidationPolicy(
        name="required-tags",
        description=f"Every taggable AWS resource carries {', '.join(REQUIRED_TAGS)}.",
        enforcement_level=MANDATORY,
        validate=lambda args, report: _report_all(_required_tags(args), report),
    ),
]


def _report_all(messages: Iterable[str], report: ReportViolation) -> None:
    for message in messages:
        report(message, None)
