"""How traffic reaches a service and where its tasks may go: its security group and rules, and
its target groups (the health check that decides how fast a rollout can be).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from infra.config import ServiceConfig, naming
from infra.tags import with_name

if TYPE_CHECKING:
    from infra.aws.services import ServicesArgs

HTTPS = 443
ANYWHERE = "0.0.0.0/0"


def target_group_name(prefix: str, svc: ServiceConfig, alternate: bool = False) -> str:
    """`<prefix>-<service>-<hash>`, at most 32 characters (infra/config/naming.py)."""
    return naming.target_group_name(prefix, svc.name, svc.port, alternate)


# --- the component -----------------------------------------------------------------------------


def service_security_group(parent: pulumi.Resource, args: ServicesArgs, base: str, full: str,
                           svc: ServiceConfig) -> tuple[aws.ec2.SecurityGroup, list[pulumi.Resource]]:
    """The tasks' group: in from the ALB on the service port; out to HTTPS and the stores it uses."""
    child = pulumi.ResourceOptions(parent=parent)
    # name_prefix: a replacement never collides with the group it replaces.
    sg = aws.ec2.SecurityGroup(
        f"{base}-sg",
        name_prefix=f"{full}-",
        description=f"{svc.name} tasks: from the ALB on {svc.port}; out to HTTPS and its data stores",
        vpc_id=args.vpc_id,
        tags=with_name(args.tags, full),
        opts=child,
    )
    rules: list[pulumi.Resource] = [
        aws.vpc.SecurityGroupIngressRule(
            f"{base}-in-alb", security_group_id=sg.id, referenced_security_group_id=args.gateway.security_group_id,
            ip_protocol="tcp", from_port=svc.port, to_port=svc.port,
            description=f"ALB to {svc.name}", tags=with_name(args.tags, f"{full}-from-alb"), opts=child),
        aws.vpc.SecurityGroupEgressRule(
            f"{base}-alb-out", security_group_id=args.gateway.security_group_id, referenced_security_group_id=sg.id,
            ip_protocol="tcp", from_port=svc.port, to_port=svc.port,
            description=f"ALB to {svc.name}", tags=with_name(args.tags, f"alb-to-{full}"), opts=child),
        # ECR, Secrets Manager, CloudWatch Logs and X-Ray are all HTTPS APIs (via NAT or
        # VPC endpoints); so are the third-party APIs an application calls.
        aws.vpc.SecurityGroupEgressRule(
            f"{base}-out-https", security_group_id=sg.id, cidr_ipv4=ANYWHERE,
            ip_protocol="tcp", from_port=HTTPS, to_port=HTTPS,
            description="HTTPS to AWS APIs and the internet", tags=with_name(args.tags, f"{full}-https"), opts=child),
    ]
    stores = []
    if svc.uses_database:
        stores.append(("db", "database", args.database.security_group_id, args.database.port))
    if svc.uses_cache:
        stores.append(("cache", "cache", args.cache.security_group_id, args.cache.port))
    for short, what, store_sg, port in stores:
        rules += [
            aws.vpc.SecurityGroupEgressRule(
                f"{base}-out-{short}", security_group_id=sg.id, referenced_security_group_id=store_sg,
                ip_protocol="tcp", from_port=port, to_port=port,
                description=f"{svc.name} to the {what}", tags=with_name(args.tags, f"{full}-to-{short}"), opts=child),
            aws.vpc.SecurityGroupIngressRule(
                f"{base}-{short}-in", security_group_id=store_sg, referenced_security_group_id=sg.id,
                ip_protocol="tcp", from_port=port, to_port=port,
                description=f"{svc.name} to the {what}", tags=with_name(args.tags, f"{short}-from-{full}"), opts=child),
        ]
    return sg, rules

def service_target_group(parent: pulumi.Resource, args: ServicesArgs, base: str, svc: ServiceConfig,
                         alternate: bool = False) -> aws.lb.TargetGroup:
    check = svc.health_check
    name = target_group_name(args.name_prefix, svc, alternate)
    return aws.lb.TargetGroup(
        f"{base}-tg-alt" if alternate else f"{base}-tg",
        name=name,
        target_type="ip",  # awsvpc tasks register by IP
        protocol="HTTP",
        port=svc.port,
        vpc_id=args.vpc_id,
        # The rollout floor is healthy_threshold x interval + deregistration_delay; AWS's
        # defaults (5 x 30 s + 300 s) would make every deploy take 7.5 minutes.
        deregistration_delay=check.deregistration_delay,
        health_check={
            "enabled": True,
            "protocol": "HTTP",
            "path": check.path,
            "port": "traffic-port",
            "interval": check.interval,
            "timeout": check.timeout,
            "healthy_threshold": check.healthy_threshold,
            "unhealthy_threshold": check.unhealthy_threshold,
            "matcher": "200-399",
        },
        tags=with_name(args.tags, name),
        opts=pulumi.ResourceOptions(parent=parent),
    )
