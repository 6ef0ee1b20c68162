"""What every policy module of the pack shares: type tokens, reading wire properties, builders.

The pack's modules are `<topic>_policies.py` files beside this one, each exposing `POLICIES`;
`refarch_policies.py` joins them into the one list the engine and `ops/policy_run.py` load.

Two things the engine does that shape the code of every module:
- props arrive as read-only `Mapping`/`Sequence` proxies (never `dict`/`list`) that raise
  `UnknownValueError` when a value is not known yet (preview of a new resource). Resource checks
  let it propagate (the engine skips that resource); stack checks skip only the one resource.
- a resource policy sees one resource's inputs; rules that need siblings (the bucket and its
  encryption configuration, the ALB and its listeners) are `StackValidationPolicy`s.
Every message ends with a one-line remediation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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

# Environments where a missing WAF or TLS blocks the deploy; elsewhere it is advice.
STRICT_ENVIRONMENTS = frozenset({"prod", "staging"})
ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})

Policy = ResourceValidationPolicy | StackValidationPolicy

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

def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def get(value: Any, *path: str | int) -> Any:
    """Walk keys and indexes; None as soon as one is missing."""
    for key in path:
        if isinstance(key, int):
            if not is_list(value) or key >= len(value):
                return None
            value = value[key]
        else:
            if not is_map(value) or key not in value:
                return None
            value = value[key]
    return value


def items(value: Any) -> list[Any]:
    """A list property, or a single nested block the provider may send unwrapped."""
    if value is None:
        return []
    if is_list(value):
        return list(value)
    return [value]


def true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_document(value: Any) -> Any:
    """A JSON document property (IAM policy, container definitions): parsed, or None if unreadable."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def tags_of(props: Mapping[str, Any]) -> Mapping[str, Any]:
    tags = props.get("tags")
    if isinstance(tags, Mapping):
        return tags
    return {}


def environment_of(props: Mapping[str, Any]) -> str | None:
    value = tags_of(props).get("environment")
    return value if isinstance(value, str) else None


def label(resource: PolicyResource) -> str:
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
        """Resources of these types with their props (checks go through `guarded`/`collect`)."""
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


def guarded(check: Callable[[PolicyResource, Mapping[str, Any]], Iterable[Finding]],
             resources: Iterable[tuple[PolicyResource, Mapping[str, Any]]]) -> Iterator[Finding]:
    # A value unknown at preview makes one resource unverifiable, not the whole stack.
    for resource, props in resources:
        try:
            yield from list(check(resource, props))
        except UnknownValueError:
            continue


def report_all(messages: Iterable[str], report: ReportViolation) -> None:
    for message in messages:
        report(message, None)


def statements_of(document_value: Any) -> list[Any]:
    """The statements of a policy document property (JSON string or mapping); [] if unreadable."""
    return items(get(parse_document(document_value), "Statement"))


def as_strings(value: Any) -> list[str]:
    """A policy element that may be one string or a list of them."""
    return [v for v in items(value) if isinstance(v, str)]


def internet_facing_alb(props: Mapping[str, Any]) -> bool:
    return props.get("loadBalancerType") in (None, "application") and not true(props.get("internal"))


def label_of(args: ResourceValidationArgs) -> str:
    return f"{args.resource_type.rsplit(':', 1)[-1]} '{args.name}'"
