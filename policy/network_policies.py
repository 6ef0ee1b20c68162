"""Network exposure: no public database, data stores in isolated subnets, no internet ingress."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policy_support import (
    ANYWHERE,
    CACHE_GROUP,
    CACHE_SUBNET_GROUP,
    DEFAULT_ROUTE_TABLE,
    LOAD_BALANCERS,
    MAIN_ROUTE_TABLE_ASSOCIATION,
    MANDATORY,
    RDS_CLUSTER,
    RDS_CLUSTER_INSTANCE,
    RDS_INSTANCE,
    RDS_SUBNET_GROUP,
    ROUTE,
    ROUTE_TABLE,
    ROUTE_TABLE_ASSOCIATION,
    SECURITY_GROUPS,
    SG_INGRESS_RULE,
    SG_RULE,
    SUBNET,
    Finding,
    Policy,
    Stack,
    as_int,
    environment_of,
    get,
    guarded,
    internet_facing_alb,
    items,
    label,
    resource_policy,
    stack_policy,
    true,
)
from pulumi_policy import PolicyResource, ResourceValidationArgs
from pulumi_policy.proxy import UnknownValueError

PUBLIC_PORTS = frozenset({80, 443})


def _db_not_public(args: ResourceValidationArgs) -> Iterator[str]:
    if true(args.props.get("publiclyAccessible")):
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
            exits[table_id] = [e for route in items(table.props.get("routes"))
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
        problems = [p for p in (subnet_problem(s) for s in items(props.get("subnetIds"))) if p]
        if problems:
            yield Finding(f"Subnet group '{group.name}' places a data store outside isolated subnets: "
                          f"{'; '.join(problems)}. Use only the isolated subnets (no internet or NAT route).",
                          group.urn, environment_of(props))

    def unplaced(store: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        key = "subnetGroupName" if store.resource_type == CACHE_GROUP else "dbSubnetGroupName"
        if not props.get(key):
            yield Finding(f"{label(store)} has no subnet group, so AWS places it in the default VPC. "
                          f"Set {key} to a subnet group of the isolated subnets.", store.urn, environment_of(props))

    yield from guarded(check, stack.known(RDS_SUBNET_GROUP, CACHE_SUBNET_GROUP))
    yield from guarded(unplaced, stack.known(RDS_INSTANCE, RDS_CLUSTER, CACHE_GROUP))


def _exit(route: Any, v4: str, v6: str) -> list[str]:
    """How a route leaves the VPC, if it does: a default route, or anything through an IGW."""
    destination = get(route, v4) or get(route, v6)
    gateway = str(get(route, "gatewayId") or "")
    if destination in ANYWHERE or gateway.startswith("igw-"):
        return [f"{destination} to {gateway or _target(route)}"]
    return []


def _target(route: Any) -> str:
    for key in ("natGatewayId", "networkInterfaceId", "transitGatewayId", "vpcPeeringConnectionId",
                "egressOnlyGatewayId", "vpcEndpointId"):
        if get(route, key):
            return str(get(route, key))
    return "a gateway"


def _public_ingress(stack: Stack) -> Iterator[Finding]:
    alb_groups = {group for _, groups in stack.collect(
        LOAD_BALANCERS, lambda p: list(items(p.get("securityGroups"))) if internet_facing_alb(p) else [])
        for group in groups if isinstance(group, str)}

    def allowed(group_id: Any, protocol: Any, from_port: Any, to_port: Any) -> bool:
        port = as_int(from_port)
        return (group_id in alb_groups and str(protocol).lower() in ("tcp", "6")
                and port in PUBLIC_PORTS and as_int(to_port) == port)

    def finding(what: str, group_id: Any, ports: str, resource: PolicyResource, env: str | None) -> Finding:
        return Finding(f"{what} opens {ports} to the whole internet on security group {group_id}; only the "
                       "internet-facing ALB may, on 80/443. Restrict the source to a security group or a "
                       "known CIDR.", resource.urn, env)

    def inline(group: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        for rule in items(props.get("ingress")):
            sources = set(items(get(rule, "cidrBlocks"))) | set(items(get(rule, "ipv6CidrBlocks")))
            protocol, low, high = get(rule, "protocol"), get(rule, "fromPort"), get(rule, "toPort")
            if sources & ANYWHERE and not allowed(props.get("id"), protocol, low, high):
                yield finding(f"{label(group)} (inline rule)", props.get("id"),
                              _ports(protocol, low, high), group, environment_of(props))

    def vpc_rule(rule: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        sources = {props.get("cidrIpv4"), props.get("cidrIpv6")}
        protocol, low, high = props.get("ipProtocol"), props.get("fromPort"), props.get("toPort")
        group_id = props.get("securityGroupId")
        if sources & ANYWHERE and not allowed(group_id, protocol, low, high):
            yield finding(label(rule), group_id, _ports(protocol, low, high), rule, environment_of(props))

    def ec2_rule(rule: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        if props.get("type") != "ingress":
            return
        sources = set(items(props.get("cidrBlocks"))) | set(items(props.get("ipv6CidrBlocks")))
        protocol, low, high = props.get("protocol"), props.get("fromPort"), props.get("toPort")
        group_id = props.get("securityGroupId")
        if sources & ANYWHERE and not allowed(group_id, protocol, low, high):
            yield finding(label(rule), group_id, _ports(protocol, low, high), rule, None)

    yield from guarded(inline, stack.known(*SECURITY_GROUPS))
    yield from guarded(vpc_rule, stack.known(SG_INGRESS_RULE))
    yield from guarded(ec2_rule, stack.known(SG_RULE))


def _ports(protocol: Any, low: Any, high: Any) -> str:
    if str(protocol) in ("-1", "all"):
        return "all ports"
    return f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"


POLICIES: list[Policy] = [
    resource_policy("db-not-public", "No database has a public endpoint.",
                    MANDATORY, [RDS_INSTANCE, RDS_CLUSTER_INSTANCE], _db_not_public),
    stack_policy("data-stores-isolated", "Databases and caches live only in subnets with no route out of the VPC.",
                 MANDATORY, _isolated_subnets),
    stack_policy("sg-no-public-ingress",
                 "No security group admits 0.0.0.0/0 or ::/0, except the internet-facing ALB on 80/443.",
                 MANDATORY, _public_ingress),
]
