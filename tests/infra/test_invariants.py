"""Graph-wide invariants over every shipped stack, read from the synth of the whole program."""

from __future__ import annotations

import pytest

from ops.mocks import has_property
from ops.synth import Synth

STACKS = ["dev", "staging", "prod"]
OPEN = {"0.0.0.0/0", "::/0"}
REQUIRED_TAGS = {"project", "stack", "environment", "managed-by"}


@pytest.fixture(params=STACKS)
def synth(request, synths) -> Synth:
    return synths[request.param]


def by_id(synth: Synth) -> dict[str, dict]:
    return {r["id"]: r for r in synth.resources if r["id"]}


def alb_security_groups(synth: Synth) -> set[str]:
    return {sg for lb in synth.of_type("aws:lb/loadBalancer:LoadBalancer") for sg in lb["inputs"]["securityGroups"]}


def ingress_rules(synth: Synth):
    """(security group id, from, to, cidrs) for every ingress rule, whichever way it is declared."""
    for r in synth.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        i = r["inputs"]
        yield i["securityGroupId"], i.get("fromPort"), i.get("toPort"), {i.get("cidrIpv4"), i.get("cidrIpv6")} - {None}
    for r in synth.of_type("aws:ec2/securityGroupRule:SecurityGroupRule"):
        i = r["inputs"]
        if i["type"] == "ingress":
            yield i["securityGroupId"], i.get("fromPort"), i.get("toPort"), set(i.get("cidrBlocks", [])) | set(i.get("ipv6CidrBlocks", []))
    for r in synth.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in r["inputs"].get("ingress", []):
            yield r["id"], rule.get("fromPort"), rule.get("toPort"), set(rule.get("cidrBlocks", [])) | set(rule.get("ipv6CidrBlocks", []))


def test_no_ingress_from_anywhere_except_the_alb_on_80_and_443(synth):
    albs = alb_security_groups(synth)
    assert albs
    for sg, low, high, cidrs in ingress_rules(synth):
        if cidrs & OPEN:
            assert sg in albs and (low, high) in {(80, 80), (443, 443)}, (sg, low, high, cidrs)


def isolated_subnets(synth: Synth) -> set[str]:
    """Subnets whose route table has no default route: no way in or out of the VPC."""
    default_route_tables = {
        r["inputs"]["routeTableId"] for r in synth.of_type("aws:ec2/route:Route")
        if r["inputs"].get("destinationCidrBlock") == "0.0.0.0/0"
    } | {
        rt["id"] for rt in synth.of_type("aws:ec2/routeTable:RouteTable")
        if any(route.get("cidrBlock") == "0.0.0.0/0" for route in rt["inputs"].get("routes", []))
    }
    associated = {a["inputs"]["subnetId"]: a["inputs"]["routeTableId"]
                  for a in synth.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")}
    return {subnet for subnet, table in associated.items() if table not in default_route_tables}


def test_database_and_cache_live_only_in_isolated_subnets_and_are_never_public(synth):
    isolated = isolated_subnets(synth)
    groups = {g["inputs"]["name"]: g for g in synth.of_type("aws:rds/subnetGroup:SubnetGroup")}
    groups |= {g["inputs"]["name"]: g for g in synth.of_type("aws:elasticache/subnetGroup:SubnetGroup")}
    (db,) = synth.of_type("aws:rds/instance:Instance")
    assert db["inputs"].get("publiclyAccessible") is not True
    assert set(groups[db["inputs"]["dbSubnetGroupName"]]["inputs"]["subnetIds"]) <= isolated
    (cache,) = synth.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    assert set(groups[cache["inputs"]["subnetGroupName"]]["inputs"]["subnetIds"]) <= isolated
    assert isolated, "the network has isolated subnets"


def test_every_log_group_has_retention(synth):
    groups = synth.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert groups
    for group in groups:
        assert group["inputs"].get("retentionInDays", 0) > 0, group["name"]


def test_all_data_at_rest_is_encrypted(synth):
    for db in synth.of_type("aws:rds/instance:Instance"):
        assert db["inputs"]["storageEncrypted"] is True and db["inputs"]["kmsKeyId"]
    for rg in synth.of_type("aws:elasticache/replicationGroup:ReplicationGroup"):
        assert rg["inputs"]["atRestEncryptionEnabled"] is True and rg["inputs"]["transitEncryptionEnabled"] is True
    for topic in synth.of_type("aws:sns/topic:Topic"):
        assert topic["inputs"].get("kmsMasterKeyId"), topic["name"]
    for secret in synth.of_type("aws:secretsmanager/secret:Secret"):
        assert secret["inputs"].get("kmsKeyId"), secret["name"]
    for repo in synth.of_type("aws:ecr/repository:Repository"):
        assert repo["inputs"]["encryptionConfigurations"], repo["name"]
    sse = {c["inputs"]["bucket"] for t in ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                                           "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
           for c in synth.of_type(t)}
    for t in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
        for bucket in synth.of_type(t):
            assert bucket["id"] in sse or bucket["inputs"].get("serverSideEncryptionConfiguration"), bucket["name"]
    for instance in synth.of_type("aws:ec2/instance:Instance"):
        assert instance["inputs"]["rootBlockDevice"]["encrypted"] is True


def test_every_taggable_resource_carries_the_standard_tags(synth):
    untagged = [
        r["name"] for r in synth.resources
        if not r["type"].startswith("refarch:") and has_property(r["type"], "tags")
        and not REQUIRED_TAGS <= set(r["inputs"].get("tags", {}))
    ]
    assert untagged == []
    env = synth.stack
    assert all(r["inputs"]["tags"]["environment"] == env for r in synth.resources if "tags" in r["inputs"])


def test_stateful_resources_are_protected_in_prod_only(synths):
    stateful = ("aws:rds/instance:Instance", "aws:elasticache/replicationGroup:ReplicationGroup")
    for stack, want in (("prod", True), ("dev", False)):
        for t in stateful:
            for r in synths[stack].of_type(t):
                assert r["options"]["protect"] is want, (stack, r["name"])


def test_dev_is_small_and_prod_highly_available(synths):
    dev, prod = synths["dev"], synths["prod"]
    (dev_db,), (prod_db,) = dev.of_type("aws:rds/instance:Instance"), prod.of_type("aws:rds/instance:Instance")
    assert (dev_db["inputs"]["multiAz"], prod_db["inputs"]["multiAz"]) == (False, True)
    assert (dev_db["inputs"]["deletionProtection"], prod_db["inputs"]["deletionProtection"]) == (False, True)
    assert dev_db["inputs"]["instanceClass"] == "db.t4g.micro"
    (dev_rg,), (prod_rg,) = (s.of_type("aws:elasticache/replicationGroup:ReplicationGroup") for s in (dev, prod))
    assert dev_rg["inputs"].get("automaticFailoverEnabled") in (False, None)
    assert prod_rg["inputs"]["automaticFailoverEnabled"] is True and prod_rg["inputs"]["multiAzEnabled"] is True
    assert len(dev.of_type("aws:ec2/natGateway:NatGateway")) == 0 and len(dev.of_type("aws:ec2/instance:Instance")) == 1
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == 3
    # The edge's web ACL guards every stack, dev included; no regional one is left.
    for s in (dev, prod):
        assert [a["inputs"]["scope"] for a in s.of_type("aws:wafv2/webAcl:WebAcl")] == ["CLOUDFRONT"]
        assert s.of_type("aws:wafv2/webAclAssociation:WebAclAssociation") == []
    assert not dev.of_type("aws:lb/listener:Listener")[0]["inputs"].get("certificateArn")
    assert any(listener["inputs"].get("protocol") == "HTTPS" for listener in prod.of_type("aws:lb/listener:Listener"))


def test_outputs_are_what_the_pipeline_needs(synth):
    outputs = synth.outputs
    assert outputs["gateway_url"].startswith(("http://", "https://"))
    assert outputs["cluster_name"] == f"refarch-{synth.stack}"
    svc = outputs["services"]["products"]
    tgs = {r["arn"] for r in synth.of_type("aws:lb/targetGroup:TargetGroup")}
    assert svc["target_group_arn"] in tgs
    alarms = {r["inputs"]["name"] for r in synth.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert svc["health_alarm_names"] and set(svc["health_alarm_names"]) <= alarms
    assert set(outputs["health_alarm_names"]) <= alarms
    assert svc["migration_task_definition_urn"] in {r["urn"] for r in synth.of_type("aws:ecs/taskDefinition:TaskDefinition")}
    assert outputs["database_endpoint"].endswith(".rds.amazonaws.com")
    assert outputs["cache_endpoint"].endswith(".cache.amazonaws.com")
