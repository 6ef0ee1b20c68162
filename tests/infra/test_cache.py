"""The cache layer alone, with stand-in network and key, one isolated synth per stack file."""

from __future__ import annotations

import pulumi
import pytest

from infra.aws.cache import Cache, CacheArgs
from infra.config import StackConfig
from infra.tags import base_tags
from ops import stackfile
from ops.mocks import has_property
from ops.synth import Synth, run

KEY = "arn:aws:kms:us-east-1:123456789012:key/0standin-data-key"
ISOLATED = ["subnet-0isolated0a", "subnet-0isolated0b", "subnet-0isolated0c"]
GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
# Stack -> (protect, log retention passed in): as program.py passes them.
CASES = {"dev": (False, 7), "staging": (False, 30), "prod": (True, 90)}


def synth_cache(cfg: StackConfig, stack: str, protect: bool, retention: int) -> Synth:
    def build(c: StackConfig) -> None:
        cache = Cache("cache", CacheArgs(
            config=c.cache,
            name_prefix=f"refarch-{stack}",
            vpc_id=pulumi.Output.from_input("vpc-0standin"),
            isolated_subnet_ids=[pulumi.Output.from_input(s) for s in ISOLATED],
            kms_key_arn=pulumi.Output.from_input(KEY),
            log_retention_days=retention,
            protect=protect,
            tags=base_tags("refarch", stack, c.environment),
        ))
        for attr in ("security_group_id", "endpoint", "port", "user_name", "user_arn", "replication_group_arn",
                     "replication_group_id", "member_cluster_ids"):
            pulumi.export(attr, getattr(cache, attr))
        pulumi.export("cluster_count", cache.cluster_count)

    return run(cfg, stack, build=build)


@pytest.fixture(scope="module")
def caches() -> dict[str, tuple[StackConfig, Synth]]:
    out = {}
    for stack, (protect, retention) in CASES.items():
        cfg = stackfile.load(stack)
        out[stack] = (cfg, synth_cache(cfg, stack, protect, retention))
    return out


@pytest.fixture(params=list(CASES))
def case(request, caches) -> tuple[StackConfig, Synth]:
    return caches[request.param]


def group(s: Synth) -> dict:
    return s.one(GROUP)["inputs"]


def test_cache_sits_in_the_isolated_subnets_behind_its_own_rule_less_group(case):
    _, s = case
    g = group(s)
    subnets = s.one("aws:elasticache/subnetGroup:SubnetGroup")["inputs"]
    assert subnets["subnetIds"] == ISOLATED and g["subnetGroupName"] == subnets["name"]
    sg = s.one("aws:ec2/securityGroup:SecurityGroup")
    assert sg["inputs"]["vpcId"] == "vpc-0standin"
    assert "ingress" not in sg["inputs"] and "egress" not in sg["inputs"], "services add their own ingress"
    assert not s.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert g["securityGroupIds"] == [sg["id"]] == [s.outputs["security_group_id"]]
    assert g["port"] == 6379 == s.outputs["port"]


def test_encrypted_at_rest_with_the_stack_key_and_in_transit(case):
    _, s = case
    g = group(s)
    assert g["atRestEncryptionEnabled"] is True and g["kmsKeyId"] == KEY
    assert g["transitEncryptionEnabled"] is True


def test_clients_log_in_as_the_applications_iam_user_and_no_shared_token_exists(case):
    cfg, s = case
    g = group(s)
    assert "authToken" not in g and "authTokenWo" not in g
    assert s.of_type("random:index/randomPassword:RandomPassword") == []
    assert s.of_type("aws:secretsmanager/secret:Secret") == []
    users = {u["inputs"]["userName"]: u for u in s.of_type("aws:elasticache/user:User")}
    app = users[f"refarch-{s.stack}-cache-app"]["inputs"]
    # IAM authentication: the user id is the user name; no password anywhere.
    assert app["userId"] == app["userName"] == s.outputs["user_name"]
    assert app["authenticationMode"] == {"type": "iam"} and "passwords" not in app
    assert app["engine"] == cfg.cache.engine
    assert app["accessString"] == "on ~* +@all -@dangerous"
    # Every user group must hold a `default` user: this one is switched off and can run nothing.
    default = users["default"]["inputs"]
    assert default["accessString"] == "off -@all" and default["userId"] == f"refarch-{s.stack}-cache-default"
    [user_group] = s.of_type("aws:elasticache/userGroup:UserGroup")
    assert sorted(user_group["inputs"]["userIds"]) == sorted(u["inputs"]["userId"] for u in users.values())
    assert user_group["inputs"]["engine"] == cfg.cache.engine
    assert g["userGroupIds"] == [user_group["inputs"]["userGroupId"]]
    assert s.outputs["user_arn"] == users[app["userName"]]["arn"]
    assert s.outputs["replication_group_arn"] == s.one(GROUP)["arn"]


def test_engine_and_size_come_from_config(case):
    cfg, s = case
    g = group(s)
    c = cfg.cache
    assert (g["engine"], g["engineVersion"], g["nodeType"]) == (c.engine, c.engine_version, c.node_type)
    assert g["numCacheClusters"] == 1 + c.replicas == s.outputs["cluster_count"]
    assert s.outputs["member_cluster_ids"] == [f"refarch-{s.stack}-cache-{i:03d}" for i in range(1, c.replicas + 2)]
    assert g["snapshotRetentionLimit"] == c.snapshot_retention_days and g["snapshotWindow"]
    assert g["autoMinorVersionUpgrade"] is True


def test_failover_and_multi_az_exactly_when_there_is_a_replica(caches):
    seen = set()
    for cfg, s in caches.values():
        g = group(s)
        has_replica = cfg.cache.replicas >= 1
        seen.add(has_replica)
        assert g["automaticFailoverEnabled"] is has_replica
        assert g["multiAzEnabled"] is has_replica
    assert seen == {True, False}, "the shipped stacks cover both shapes"


def test_slow_and_engine_logs_go_to_encrypted_log_groups_with_retention(caches):
    for stack, (_, s) in caches.items():
        groups = {g["inputs"]["name"]: g["inputs"] for g in s.of_type("aws:cloudwatch/logGroup:LogGroup")}
        assert all(g["retentionInDays"] == CASES[stack][1] and g["kmsKeyId"] == KEY for g in groups.values())
        delivery = {d["logType"]: d for d in group(s)["logDeliveryConfigurations"]}
        assert set(delivery) == {"slow-log", "engine-log"}
        for d in delivery.values():
            assert d["destinationType"] == "cloudwatch-logs" and d["destination"] in groups
        assert {d["destination"] for d in delivery.values()} == set(groups)


def test_prod_is_protected_changes_wait_for_the_window_and_keep_a_final_snapshot(caches):
    dev, prod = caches["dev"][1], caches["prod"][1]
    assert dev.one(GROUP)["options"]["protect"] is False
    assert prod.one(GROUP)["options"]["protect"] is True
    assert prod.one(GROUP)["options"]["retainOnDelete"] is False
    assert (group(dev)["applyImmediately"], group(prod)["applyImmediately"]) == (True, False)
    assert "finalSnapshotIdentifier" not in group(dev)
    assert group(prod)["finalSnapshotIdentifier"] == "refarch-prod-cache-final"


def test_outputs_and_names(case):
    _, s = case
    assert group(s)["replicationGroupId"] == f"refarch-{s.stack}-cache" == s.outputs["replication_group_id"]
    assert s.outputs["endpoint"].endswith(".cache.amazonaws.com")
    for r in s.resources:
        if not r["type"].startswith("refarch:") and has_property(r["type"], "tags"):
            tags = r["inputs"]["tags"]
            assert tags["environment"] == s.stack and tags["Name"].startswith(f"refarch-{s.stack}-"), r["name"]
