"""The network layer alone, one isolated synth per NAT strategy."""

from __future__ import annotations

import json
from collections import Counter

import pulumi
import pytest

from infra.aws.network import Network, NetworkArgs
from infra.config import ConfigError, StackConfig, parse
from infra.tags import base_tags
from ops import stackfile
from ops.mocks import has_property
from ops.synth import Synth, run

ANYWHERE = "0.0.0.0/0"
MOCK_AZS = ["us-east-1a", "us-east-1b", "us-east-1c"]

# Strategy -> (stack file, network section override or None to keep the file's).
CASES: dict[str, tuple[str, dict | None]] = {
    "instance": ("dev", None),
    "single": ("staging", None),
    "per-az": ("prod", None),
    "none": ("dev", {"az_count": 3, "nat": "none", "flow_logs": False}),
}


KEY = "arn:aws:kms:us-east-1:123456789012:key/0standin-data-key"
BOUNDARY = "arn:aws:iam::123456789012:policy/refarch-standin-boundary"


def config(stack: str, **sections: object) -> StackConfig:
    values = stackfile.read_values(stack)
    values.update({f"refarch:{key}": value for key, value in sections.items()})
    return parse(values, stack, f"stacks/Pulumi.{stack}.yaml")


def synth_network(cfg: StackConfig, stack: str) -> Synth:
    def build(c: StackConfig) -> None:
        net = Network("network", NetworkArgs(
            config=c.network,
            name_prefix=f"refarch-{stack}",
            log_retention_days=c.monitoring.audit_log_retention_days,
            kms_key_arn=pulumi.Output.from_input(KEY),
            tags=base_tags("refarch", stack, c.environment),
            permissions_boundary_arn=pulumi.Output.from_input(BOUNDARY),
        ))
        pulumi.export("vpc_id", net.vpc_id)
        pulumi.export("public", net.public_subnet_ids)
        pulumi.export("private", net.private_subnet_ids)
        pulumi.export("isolated", net.isolated_subnet_ids)
        if net.nat_instance is not None:
            pulumi.export("nat_eni", net.nat_instance.primary_network_interface_id)

    return run(cfg, stack, build=build)


@pytest.fixture(scope="module")
def nets() -> dict[str, tuple[StackConfig, Synth]]:
    out: dict[str, tuple[StackConfig, Synth]] = {}
    for strategy, (stack, network) in CASES.items():
        cfg = config(stack) if network is None else config(stack, network=network)
        assert cfg.network.nat == strategy
        out[strategy] = (cfg, synth_network(cfg, stack))
    return out


@pytest.fixture(params=list(CASES))
def case(request, nets) -> tuple[StackConfig, Synth]:
    return nets[request.param]


class Graph:
    """The routing graph of one synth: subnets by tier and AZ, route tables and their routes."""

    def __init__(self, s: Synth):
        self.s = s
        # Registration order is not deterministic: order subnets by their AZ index (`<tier>-<i>`).
        ordered = sorted(s.of_type("aws:ec2/subnet:Subnet"), key=lambda r: int(r["name"].rsplit("-", 1)[1]))
        self.subnets = {r["id"]: r["inputs"] for r in ordered}
        self.table_of = {a["inputs"]["subnetId"]: a["inputs"]["routeTableId"]
                         for a in s.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")}
        self.routes = [r["inputs"] for r in s.of_type("aws:ec2/route:Route")]

    def tier(self, tier: str) -> list[str]:
        return [sid for sid, i in self.subnets.items() if i["tags"]["tier"] == tier]

    def tables(self, tier: str) -> set[str]:
        return {self.table_of[sid] for sid in self.tier(tier)}

    def defaults(self, table: str) -> list[dict]:
        return [r for r in self.routes if r["routeTableId"] == table and r.get("destinationCidrBlock") == ANYWHERE]


def test_subnets_are_the_config_cidrs_one_per_az_and_never_auto_public(case):
    cfg, s = case
    g = Graph(s)
    vpc = s.one("aws:ec2/vpc:Vpc")
    assert vpc["inputs"]["cidrBlock"] == cfg.network.cidr
    assert vpc["inputs"]["enableDnsHostnames"] is True and vpc["inputs"]["enableDnsSupport"] is True
    for tier, cidrs in cfg.network.subnet_cidrs().items():
        subnets = [g.subnets[sid] for sid in g.tier(tier)]
        assert [sn["cidrBlock"] for sn in subnets] == cidrs
        assert [sn["availabilityZone"] for sn in subnets] == MOCK_AZS[:cfg.network.az_count]
        assert s.outputs[tier] == g.tier(tier)
        assert all(sn["vpcId"] == vpc["id"] for sn in subnets)
    assert all(sn["mapPublicIpOnLaunch"] is False for sn in g.subnets.values())
    assert set(g.table_of) == set(g.subnets), "every subnet has an explicit route table"


def test_public_subnets_route_to_the_internet_gateway(case):
    _, s = case
    g = Graph(s)
    (public_rt,) = g.tables("public")
    (route,) = g.defaults(public_rt)
    assert route["gatewayId"] == s.one("aws:ec2/internetGateway:InternetGateway")["id"]


def test_isolated_route_tables_have_no_default_route_and_only_the_s3_endpoint(case):
    _, s = case
    g = Graph(s)
    isolated = g.tables("isolated")
    assert isolated.isdisjoint(g.tables("public") | g.tables("private"))
    assert [r for r in g.routes if r["routeTableId"] in isolated] == []
    for table in s.of_type("aws:ec2/routeTable:RouteTable"):
        assert not table["inputs"].get("routes"), "routes are separate resources, never inline"
    endpoint = s.one("aws:ec2/vpcEndpoint:VpcEndpoint")["inputs"]
    assert endpoint["vpcEndpointType"] == "Gateway" and endpoint["serviceName"] == "com.amazonaws.us-east-1.s3"
    assert set(endpoint["routeTableIds"]) == g.tables("private") | isolated


def test_no_nat_means_no_egress_from_private_subnets(nets):
    _, s = nets["none"]
    g = Graph(s)
    for typ in ("aws:ec2/natGateway:NatGateway", "aws:ec2/instance:Instance", "aws:ec2/eip:Eip"):
        assert s.of_type(typ) == []
    assert all(g.defaults(table) == [] for table in g.tables("private"))


def test_nat_instance_is_one_hardened_forwarder_every_private_table_routes_to(nets):
    cfg, s = nets["instance"]
    g = Graph(s)
    assert s.of_type("aws:ec2/natGateway:NatGateway") == []
    (instance,) = s.of_type("aws:ec2/instance:Instance")
    i = instance["inputs"]
    assert i["instanceType"] == "t4g.nano"
    assert i["sourceDestCheck"] is False
    assert i["metadataOptions"]["httpTokens"] == "required"
    assert i["rootBlockDevice"]["encrypted"] is True
    assert i["subnetId"] == g.tier("public")[0] and i["associatePublicIpAddress"] is True
    assert "ip_forward = 1" in i["userData"] and "masquerade" in i["userData"]
    assert "ami" in instance["options"]["ignoreChanges"]
    (eip,) = s.of_type("aws:ec2/eip:Eip")
    assert eip["inputs"]["instance"] == instance["id"]
    for table in g.tables("private"):
        (route,) = g.defaults(table)
        assert route["networkInterfaceId"] == s.outputs["nat_eni"]
    # Its security group: anything from inside the VPC in, anything out; nothing from outside.
    (sg,) = s.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert i["vpcSecurityGroupIds"] == [sg["id"]]
    (ingress,) = s.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    (egress,) = s.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert (ingress["inputs"]["securityGroupId"], ingress["inputs"]["cidrIpv4"]) == (sg["id"], cfg.network.cidr)
    assert (egress["inputs"]["securityGroupId"], egress["inputs"]["cidrIpv4"]) == (sg["id"], ANYWHERE)


def test_single_nat_gateway_serves_every_az_from_the_first_public_subnet(nets):
    _, s = nets["single"]
    g = Graph(s)
    (nat,) = s.of_type("aws:ec2/natGateway:NatGateway")
    (eip,) = s.of_type("aws:ec2/eip:Eip")
    assert nat["inputs"]["subnetId"] == g.tier("public")[0]
    assert nat["inputs"]["allocationId"] == eip["id"]
    assert s.of_type("aws:ec2/instance:Instance") == []
    for table in g.tables("private"):
        (route,) = g.defaults(table)
        assert route["natGatewayId"] == nat["id"]


def test_per_az_nat_keeps_each_az_egress_in_its_own_az(nets):
    cfg, s = nets["per-az"]
    g = Graph(s)
    nats = s.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == cfg.network.az_count == 3
    az_of_nat = {n["id"]: g.subnets[n["inputs"]["subnetId"]]["availabilityZone"] for n in nats}
    assert sorted(az_of_nat.values()) == MOCK_AZS
    assert {g.subnets[n["inputs"]["subnetId"]]["tags"]["tier"] for n in nats} == {"public"}
    assert len({n["inputs"]["allocationId"] for n in nats}) == 3, "one EIP each"
    private = g.tier("private")
    assert len({g.table_of[sid] for sid in private}) == 3, "one route table per AZ"
    for sid in private:
        (route,) = g.defaults(g.table_of[sid])
        assert az_of_nat[route["natGatewayId"]] == g.subnets[sid]["availabilityZone"]


def test_flow_logs_go_to_an_encrypted_audit_log_group_through_a_scoped_bounded_role(case):
    cfg, s = case
    if not cfg.network.flow_logs:
        assert s.of_type("aws:ec2/flowLog:FlowLog") == [] and s.of_type("aws:cloudwatch/logGroup:LogGroup") == []
        return
    (group,) = s.of_type("aws:cloudwatch/logGroup:LogGroup")
    # Flow logs are audit logs: they follow audit_log_retention_days, not the application's.
    assert group["inputs"]["retentionInDays"] == cfg.monitoring.audit_log_retention_days
    assert group["inputs"]["kmsKeyId"] == KEY
    (flow,) = s.of_type("aws:ec2/flowLog:FlowLog")
    role = s.one("aws:iam/role:Role")
    assert role["inputs"]["permissionsBoundary"] == BOUNDARY
    assert flow["inputs"]["vpcId"] == s.one("aws:ec2/vpc:Vpc")["id"]
    assert flow["inputs"]["trafficType"] == "ALL"
    assert flow["inputs"]["logDestination"] == group["arn"]
    assert flow["inputs"]["iamRoleArn"] == role["arn"]
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert [t["Principal"] for t in trust] == [{"Service": "vpc-flow-logs.amazonaws.com"}]
    assert trust[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    policy = s.one("aws:iam/rolePolicy:RolePolicy")["inputs"]
    assert policy["role"] == role["id"]
    for statement in json.loads(policy["policy"])["Statement"]:
        assert statement["Resource"] == [group["arn"], f"{group['arn']}:*"]
        assert all(action.startswith("logs:") for action in statement["Action"])


def test_default_security_group_is_closed(case):
    _, s = case
    sg = s.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")["inputs"]
    assert (sg["ingress"], sg["egress"]) == ([], [])
    assert sg["vpcId"] == s.one("aws:ec2/vpc:Vpc")["id"]


def test_every_taggable_resource_is_named_and_tagged(case):
    _, s = case
    for r in s.resources:
        if has_property(r["type"], "tags"):
            tags = r["inputs"].get("tags", {})
            assert tags.get("Name", "").startswith(f"refarch-{s.stack}-"), r["name"]
            assert tags["stack"] == s.stack, r["name"]


def test_resource_counts_scale_with_the_az_count(nets):
    cfg, s = nets["per-az"]
    counts = Counter(r["type"] for r in s.resources)
    azs = cfg.network.az_count
    assert counts["aws:ec2/subnet:Subnet"] == 3 * azs
    # public (shared) + one private per AZ + isolated (shared)
    assert counts["aws:ec2/routeTable:RouteTable"] == azs + 2


def test_an_x86_nat_instance_type_is_refused_before_deploy():
    with pytest.raises(ConfigError, match=r"nat_instance_type 't3.nano' is an x86 type"):
        config("dev", network={"az_count": 2, "nat": "instance", "nat_instance_type": "t3.nano"})
