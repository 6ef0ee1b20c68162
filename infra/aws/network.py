"""The network layer: one VPC, three subnet tiers per AZ, and the egress strategy the stack picks.

Tiers: public (the ALB and NAT), private (the services; egress through NAT when there is any) and
isolated (database and cache; no route out of the VPC at all).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import NetworkConfig

ANYWHERE = "0.0.0.0/0"

# Every Graviton family has a `g` after its generation digit (t4g, m7g, c6gn, r8gd); a1 predates that.
# The NAT instance boots an arm64 AMI, so an x86 type would fail only at deploy time.

# First boot of the NAT instance: forward IPv4 and masquerade it behind the instance's own address.
# nftables and the sysctl file persist both across reboots. The instance has a public IP from launch,
# so `dnf` can reach the Amazon Linux repositories before anything else routes through it.
NAT_USER_DATA = """#!/bin/bash
set -euo pipefail
dnf install -y nftables
echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-nat.conf
sysctl --system
iface=$(ip route show default | awk '{print $5; exit}')
cat > /etc/sysconfig/nftables.conf <<EOF
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$iface" masquerade
  }
}
EOF
systemctl enable nftables
systemctl restart nftables
"""


@dataclass
class NetworkArgs:
    config: NetworkConfig
    name_prefix: str
    # Flow logs are audit logs: they follow monitoring.audit_log_retention_days.
    log_retention_days: int
    kms_key_arn: pulumi.Input[str]
    tags: dict[str, str]
    permissions_boundary_arn: pulumi.Input[str] | None = None


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    availability_zones: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    isolated_subnet_ids: list[pulumi.Output[str]]
    nat_instance: aws.ec2.Instance | None

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:network:Network", name, None, opts)
        self._base, self._args = name, args
        self.nat_instance = None
        cfg, prefix = args.config, args.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)

        self.vpc_cidr = cfg.cidr
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=cfg.cidr,
            # Interface endpoints, RDS and ElastiCache endpoints all resolve through VPC DNS.
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=self._tags(f"{prefix}-vpc"),
            opts=child,
        )
        self.vpc_id = self.vpc.id

        # AWS adds allow-all rules to every VPC's default group; anything launched without an
        # explicit group would land in it. Adopting it with empty rule lists removes them.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags=self._tags(f"{prefix}-default-closed"),
            opts=child,
        )

        names = aws.get_availability_zones_output(state="available", opts=invoke).names
        self.availability_zones = [names.apply(_pick_az(i, cfg.az_count)) for i in range(cfg.az_count)]

        cidrs = cfg.subnet_cidrs()
        public = self._subnets("public", cidrs["public"])
        private = self._subnets("private", cidrs["private"])
        isolated = self._subnets("isolated", cidrs["isolated"])
        self.public_subnet_ids = [s.id for s in public]
        self.private_subnet_ids = [s.id for s in private]
        self.isolated_subnet_ids = [s.id for s in isolated]

        self.igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags=self._tags(f"{prefix}-igw"), opts=child
        )
        public_rt = self._route_table("public", None, list(enumerate(public)))
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block=ANYWHERE,
            gateway_id=self.igw.id,
            opts=child,
        )

        # One private route table per AZ whatever the NAT strategy, so switching strategy only
        # changes routes and never re-associates subnets.
        private_rts = [self._route_table("private", i, [(i, subnet)]) for i, subnet in enumerate(private)]
        # Isolated subnets share one table with no default route: data stores never reach out.
        isolated_rt = self._route_table("isolated", None, list(enumerate(isolated)))

        self._nat(private_rts, public)

        # S3 traffic (ECR image layers, backups) stays on the AWS network and skips NAT charges.
        region = aws.get_region_output(opts=invoke).region
        aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint",
            vpc_id=self.vpc.id,
            service_name=pulumi.Output.concat("com.amazonaws.", region, ".s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_rts] + [isolated_rt.id],
            tags=self._tags(f"{prefix}-s3"),
            opts=child,
        )

        if cfg.flow_logs:
            self._flow_logs(region)

        self.register_outputs({
            "vpc_id": self.vpc_id,
            "public_subnet_ids": self.public_subnet_ids,
            "private_subnet_ids": self.private_subnet_ids,
            "isolated_subnet_ids": self.isolated_subnet_ids,
        })

    def _tags(self, name: str | pulumi.Output[str], **extra: str) -> dict[str, str | pulumi.Output[str]]:
        return {**self._args.tags, **extra, "Name": name}

    def _subnets(self, tier: str, cidrs: list[str]) -> list[aws.ec2.Subnet]:
        return [
            aws.ec2.Subnet(
                f"{self._base}-{tier}-{i}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=self.availability_zones[i],
                # Nothing in a public subnet gets a public IP unless it asks for one (the NAT instance).
                map_public_ip_on_launch=False,
                tags=self._tags(
                    pulumi.Output.concat(self._args.name_prefix, f"-{tier}-", self.availability_zones[i]),
                    tier=tier,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for i, cidr in enumerate(cidrs)
        ]

    def _route_table(self, tier: str, az: int | None,
                     subnets: list[tuple[int, aws.ec2.Subnet]]) -> aws.ec2.RouteTable:
        suffix = tier if az is None else f"{tier}-{az}"
        label: str | pulumi.Output[str] = f"{self._args.name_prefix}-{tier}"
        if az is not None:
            label = pulumi.Output.concat(self._args.name_prefix, f"-{tier}-", self.availability_zones[az])
        table = aws.ec2.RouteTable(
            f"{self._base}-{suffix}-rt",
            vpc_id=self.vpc.id,
            tags=self._tags(label, tier=tier),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for i, subnet in subnets:
            aws.ec2.RouteTableAssociation(
                f"{self._base}-{tier}-{i}-rta",
                subnet_id=subnet.id,
                route_table_id=table.id,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return table

    def _nat(self, private_rts: list[aws.ec2.RouteTable], public: list[aws.ec2.Subnet]) -> None:
        strategy = self._args.config.nat
        if strategy == "none":
            return
        if strategy == "instance":
            eni = self._nat_instance(public[0])
            for i, rt in enumerate(private_rts):
                aws.ec2.Route(
                    f"{self._base}-private-{i}-default",
                    route_table_id=rt.id,
                    destination_cidr_block=ANYWHERE,
                    network_interface_id=eni,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            return
        # single: every AZ egresses through the first AZ's gateway (cheaper, one AZ's outage cuts
        # egress everywhere); per-az: each AZ through its own, so an AZ failure stays in that AZ.
        count = len(public) if strategy == "per-az" else 1
        gateways = [self._nat_gateway(i, public[i]) for i in range(count)]
        for i, rt in enumerate(private_rts):
            aws.ec2.Route(
                f"{self._base}-private-{i}-default",
                route_table_id=rt.id,
                destination_cidr_block=ANYWHERE,
                nat_gateway_id=gateways[i if strategy == "per-az" else 0].id,
                opts=pulumi.ResourceOptions(parent=self),
            )

    def _nat_gateway(self, az: int, subnet: aws.ec2.Subnet) -> aws.ec2.NatGateway:
        # A NAT gateway (and its EIP) only works once the VPC has an attached internet gateway.
        opts = pulumi.ResourceOptions(parent=self, depends_on=[self.igw])
        label = pulumi.Output.concat(self._args.name_prefix, "-nat-", self.availability_zones[az])
        eip = aws.ec2.Eip(f"{self._base}-nat-{az}-eip", domain="vpc", tags=self._tags(label), opts=opts)
        return aws.ec2.NatGateway(
            f"{self._base}-nat-{az}",
            allocation_id=eip.allocation_id,
            subnet_id=subnet.id,
            connectivity_type="public",
            tags=self._tags(label),
            opts=opts,
        )

    def _nat_instance(self, subnet: aws.ec2.Subnet) -> pulumi.Output[str]:
        """One small Graviton instance doing NAT: a few dollars a month, no HA (dev only)."""
        cfg, prefix, name = self._args.config, self._args.name_prefix, self._base
        # The type fits the arm64 AMI: checked by the schema (infra/config/network.py).
        child = pulumi.ResourceOptions(parent=self)
        sg = aws.ec2.SecurityGroup(
            f"{name}-nat-sg",
            name=f"{prefix}-nat",
            description="NAT instance: forwards traffic from inside the VPC to the internet",
            vpc_id=self.vpc.id,
            tags=self._tags(f"{prefix}-nat"),
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-nat-from-vpc",
            security_group_id=sg.id,
            description="anything the VPC sends out",
            cidr_ipv4=cfg.cidr,
            ip_protocol="-1",
            tags=self._tags(f"{prefix}-nat-from-vpc"),
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-nat-to-internet",
            security_group_id=sg.id,
            description="forwarded traffic to the internet",
            cidr_ipv4=ANYWHERE,
            ip_protocol="-1",
            tags=self._tags(f"{prefix}-nat-to-internet"),
            opts=child,
        )
        ami = aws.ec2.get_ami_output(
            most_recent=True,
            owners=["amazon"],
            filters=[
                aws.ec2.GetAmiFilterArgs(name="name", values=["al2023-ami-2023.*-kernel-*-arm64"]),
                aws.ec2.GetAmiFilterArgs(name="architecture", values=["arm64"]),
                aws.ec2.GetAmiFilterArgs(name="state", values=["available"]),
            ],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        instance = aws.ec2.Instance(
            f"{name}-nat-instance",
            ami=ami.id,
            instance_type=cfg.nat_instance_type,
            subnet_id=subnet.id,
            vpc_security_group_ids=[sg.id],
            # It forwards packets addressed to other hosts, which EC2 drops unless this is off.
            source_dest_check=False,
            # A public IP from launch: first boot installs nftables before the EIP is associated.
            associate_public_ip_address=True,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1,
            ),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                encrypted=True, volume_type="gp3", delete_on_termination=True,
            ),
            user_data=NAT_USER_DATA,
            user_data_replace_on_change=True,
            tags=self._tags(f"{prefix}-nat"),
            volume_tags=self._tags(f"{prefix}-nat"),
            # A new AMI would otherwise replace the instance (and cut egress) on whichever deploy
            # first sees it; patch deliberately with `pulumi up --replace <urn>`.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"], depends_on=[self.igw]),
        )
        # A stable egress address that survives stop/start, for third parties that allowlist it.
        self.nat_instance = instance
        aws.ec2.Eip(
            f"{name}-nat-eip",
            domain="vpc",
            instance=instance.id,
            tags=self._tags(f"{prefix}-nat"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.igw]),
        )
        return instance.primary_network_interface_id

    def _flow_logs(self, region: pulumi.Output[str]) -> None:
        name, prefix = self._base, self._args.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition

        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/{prefix}/vpc/flow-logs",
            retention_in_days=self._args.log_retention_days,
            kms_key_id=self._args.kms_key_arn,
            tags=self._tags(f"{prefix}-flow-logs"),
            opts=child,
        )
        trust = pulumi.Output.all(account, partition, region).apply(
            lambda v: json.dumps(_flow_log_trust(*v))
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            name=f"{prefix}-vpc-flow-logs",
            assume_role_policy=trust,
            permissions_boundary=self._args.permissions_boundary_arn,
            tags=self._tags(f"{prefix}-vpc-flow-logs"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-write",
            role=role.id,
            policy=group.arn.apply(lambda arn: json.dumps(_flow_log_write(arn))),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            # One-minute aggregation: rejected connections show up while someone is debugging them.
            max_aggregation_interval=60,
            tags=self._tags(f"{prefix}-flow-log"),
            opts=child,
        )


def _pick_az(index: int, count: int):
    def pick(names: list[str]) -> str:
        # The schema checks az_count against the region's zones (infra/config/regions.py).
        return names[index]
    return pick


def _flow_log_trust(account: str, partition: str, region: str) -> dict:
    # Source conditions stop another account's flow log from using this role (confused deputy).
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"},
            },
        }],
    }


def _flow_log_write(group_arn: str) -> dict:
    # Only this log group and its streams (the set CDK grants); AWS's sample policy uses "*".
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [group_arn, f"{group_arn}:*"],
        }],
    }
