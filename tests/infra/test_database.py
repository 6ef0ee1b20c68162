"""The database layer alone, with stand-in network and key, one isolated synth per case."""

from __future__ import annotations

import json

import pulumi
import pytest

from infra.aws.database import Database, DatabaseArgs
from infra.config import StackConfig, parse
from infra.tags import base_tags
from ops import stackfile
from ops.mocks import has_property
from ops.synth import Synth, run

KEY = "arn:aws:kms:us-east-1:123456789012:key/0standin-data-key"
BOUNDARY = "arn:aws:iam::123456789012:policy/refarch-standin-boundary"
ISOLATED = ["subnet-0isolated0a", "subnet-0isolated0b"]
INSTANCE = "aws:rds/instance:Instance"

# Case -> (stack file, database override or None, protect, log retention passed in).
CASES: dict[str, tuple[str, dict | None, bool, int]] = {
    "dev": ("dev", None, False, 7),
    "prod": ("prod", None, True, 90),
    "dev-no-insights": ("dev", {"performance_insights": False, "instance_class": "db.t4g.micro"}, False, 7),
}


def config(stack: str, database: dict | None) -> StackConfig:
    values = stackfile.read_values(stack)
    if database is not None:
        values["refarch:database"] = {**values.get("refarch:database", {}), **database}  # type: ignore[dict-item]
    return parse(values, stack, f"stacks/Pulumi.{stack}.yaml")


def synth_database(cfg: StackConfig, stack: str, protect: bool, retention: int) -> Synth:
    def build(c: StackConfig) -> None:
        db = Database("database", DatabaseArgs(
            config=c.database,
            name_prefix=f"refarch-{stack}",
            vpc_id=pulumi.Output.from_input("vpc-0standin"),
            isolated_subnet_ids=[pulumi.Output.from_input(s) for s in ISOLATED],
            kms_key_arn=pulumi.Output.from_input(KEY),
            protect=protect,
            tags=base_tags("refarch", stack, c.environment),
            log_retention_days=retention,
            permissions_boundary_arn=BOUNDARY,
        ))
        for attr in ("security_group_id", "endpoint", "port", "master_secret_arn", "instance_identifier",
                     "resource_id"):
            pulumi.export(attr, getattr(db, attr))
        pulumi.export("db_name", db.db_name)
        pulumi.export("username", db.username)
        pulumi.export("app_username", db.app_username)

    return run(cfg, stack, build=build)


@pytest.fixture(scope="module")
def databases() -> dict[str, tuple[StackConfig, Synth]]:
    out = {}
    for case, (stack, override, protect, retention) in CASES.items():
        cfg = config(stack, override)
        out[case] = (cfg, synth_database(cfg, stack, protect, retention))
    return out


@pytest.fixture(params=list(CASES))
def case(request, databases) -> tuple[StackConfig, Synth]:
    return databases[request.param]


def instance(s: Synth) -> dict:
    return s.one(INSTANCE)["inputs"]


def test_instance_is_private_in_the_isolated_subnet_group_behind_its_own_rule_less_group(case):
    _, s = case
    i = instance(s)
    assert i["publiclyAccessible"] is False
    group = s.one("aws:rds/subnetGroup:SubnetGroup")["inputs"]
    assert group["subnetIds"] == ISOLATED and i["dbSubnetGroupName"] == group["name"]
    sg = s.one("aws:ec2/securityGroup:SecurityGroup")
    assert sg["inputs"]["vpcId"] == "vpc-0standin"
    assert "ingress" not in sg["inputs"] and "egress" not in sg["inputs"], "services add their own ingress"
    assert not s.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert not s.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert i["vpcSecurityGroupIds"] == [sg["id"]] == [s.outputs["security_group_id"]]


def test_storage_secrets_and_insights_are_encrypted_with_the_stack_key(case):
    cfg, s = case
    i = instance(s)
    assert i["storageEncrypted"] is True and i["kmsKeyId"] == KEY
    assert (i["storageType"], i["allocatedStorage"], i["maxAllocatedStorage"]) == (
        "gp3", cfg.database.allocated_storage, cfg.database.max_allocated_storage)
    assert i["masterUserSecretKmsKeyId"] == KEY
    for group in s.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert group["inputs"]["kmsKeyId"] == KEY


def test_rds_manages_the_master_password_and_the_program_never_holds_one(case):
    cfg, s = case
    i = instance(s)
    assert i["manageMasterUserPassword"] is True
    assert "password" not in i and "passwordWo" not in i
    assert (i["username"], i["dbName"]) == (cfg.database.username, cfg.database.db_name)
    assert (s.outputs["username"], s.outputs["db_name"]) == (cfg.database.username, cfg.database.db_name)
    # The secret RDS created (the mock's masterUserSecrets[0]), not one of ours.
    assert s.outputs["master_secret_arn"].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-")
    assert s.of_type("aws:secretsmanager/secret:Secret") == []


def test_parameter_group_forces_tls_and_logs_slow_statements_and_connections(case):
    cfg, s = case
    (group,) = s.of_type("aws:rds/parameterGroup:ParameterGroup")
    g = group["inputs"]
    assert g["family"] == f"postgres{cfg.database.major_version}" == "postgres16"
    params = {p["name"]: p["value"] for p in g["parameters"]}
    assert params == {"rds.force_ssl": "1", "log_min_duration_statement": "1000",
                      "log_connections": "1", "log_disconnections": "1"}
    assert instance(s)["parameterGroupName"] == g["name"]


def test_backups_windows_and_log_exports_into_groups_with_retention(databases):
    for case, (cfg, s) in databases.items():
        i = instance(s)
        assert i["backupRetentionPeriod"] == cfg.database.backup_retention_days
        assert i["copyTagsToSnapshot"] is True
        backup_end = i["backupWindow"].split("-")[1]
        maintenance_start = i["maintenanceWindow"].split("-")[0].split(":", 1)[1]
        assert backup_end <= maintenance_start, "backup finishes before maintenance starts"
        assert i["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
        groups = {g["inputs"]["name"]: g for g in s.of_type("aws:cloudwatch/logGroup:LogGroup")}
        ident = i["identifier"]
        assert set(groups) == {f"/aws/rds/instance/{ident}/postgresql", f"/aws/rds/instance/{ident}/upgrade"}
        assert {g["inputs"]["retentionInDays"] for g in groups.values()} == {CASES[case][3]}
        # Pre-created, or RDS creates them itself with retention "never expire".
        assert {g["urn"] for g in groups.values()} <= set(s.one(INSTANCE)["options"]["dependsOn"])


def test_performance_insights_follows_config_with_free_tier_retention_and_the_stack_key(databases):
    on = instance(databases["dev"][1])
    assert on["performanceInsightsEnabled"] is True
    assert (on["performanceInsightsRetentionPeriod"], on["performanceInsightsKmsKeyId"]) == (7, KEY)
    off = instance(databases["dev-no-insights"][1])
    assert off["performanceInsightsEnabled"] is False
    assert "performanceInsightsRetentionPeriod" not in off and "performanceInsightsKmsKeyId" not in off


def test_the_application_has_its_own_role_and_logs_in_with_iam_tokens(case):
    cfg, s = case
    assert instance(s)["iamDatabaseAuthenticationEnabled"] is True
    assert s.outputs["app_username"] == cfg.database.app_username != s.outputs["username"]
    # What rds-db:connect policies name (dbuser:<DbiResourceId>/<user>).
    assert s.outputs["resource_id"].startswith("db-")


def test_enhanced_monitoring_follows_config_through_a_bounded_role_of_rds_own(databases):
    _, prod = databases["prod"]
    i = instance(prod)
    assert i["monitoringInterval"] == 60
    role = prod.one("aws:iam/role:Role")
    assert i["monitoringRoleArn"] == role["arn"]
    assert role["inputs"]["name"] == "refarch-prod-db-monitoring"
    assert role["inputs"]["permissionsBoundary"] == BOUNDARY
    [trust] = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    attachment = prod.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")["inputs"]
    assert attachment == {"role": role["inputs"]["name"],
                          "policyArn": "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"}
    # RDS checks the role's permissions when monitoring is switched on: the policy must be attached first.
    assert prod.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")["urn"] in prod.one(INSTANCE)["options"][
        "dependsOn"]
    _, dev = databases["dev"]
    assert instance(dev)["monitoringInterval"] == 0 and "monitoringRoleArn" not in instance(dev)
    assert dev.of_type("aws:iam/role:Role") == []


def test_engine_hardening_and_patching(case):
    cfg, s = case
    i = instance(s)
    assert (i["engine"], i["engineVersion"], i["instanceClass"]) == (
        "postgres", cfg.database.engine_version, cfg.database.instance_class)
    assert i["iamDatabaseAuthenticationEnabled"] is True
    assert i["caCertIdentifier"] == "rds-ca-rsa2048-g1"
    assert i["autoMinorVersionUpgrade"] is True
    assert i["port"] == 5432 == s.outputs["port"]


def test_dev_is_disposable_and_prod_is_protected_highly_available_and_keeps_a_final_snapshot(databases):
    dev, prod = databases["dev"][1], databases["prod"][1]
    d, p = instance(dev), instance(prod)
    assert (d["multiAz"], p["multiAz"]) == (False, True)
    assert (d["deletionProtection"], p["deletionProtection"]) == (False, True)
    assert d["skipFinalSnapshot"] is True and "finalSnapshotIdentifier" not in d
    assert p["skipFinalSnapshot"] is False and p["finalSnapshotIdentifier"] == "refarch-prod-db-final"
    assert (d["deleteAutomatedBackups"], p["deleteAutomatedBackups"]) == (True, False)
    assert (d["applyImmediately"], p["applyImmediately"]) == (True, False)
    assert dev.one(INSTANCE)["options"]["protect"] is False
    assert prod.one(INSTANCE)["options"]["protect"] is True
    assert prod.one(INSTANCE)["options"]["retainOnDelete"] is False


def test_outputs_name_the_instance_and_its_endpoint(case):
    _, s = case
    ident = instance(s)["identifier"]
    assert ident == f"refarch-{s.stack}-db" == s.outputs["instance_identifier"]
    assert s.outputs["endpoint"].startswith(f"{ident}.") and s.outputs["endpoint"].endswith(".rds.amazonaws.com")


def test_every_taggable_resource_is_tagged_and_named_with_the_prefix(case):
    _, s = case
    for r in s.resources:
        if r["type"].startswith("refarch:") or not has_property(r["type"], "tags"):
            continue
        tags = r["inputs"]["tags"]
        assert tags["environment"] == s.stack and tags["Name"].startswith(f"refarch-{s.stack}-"), r["name"]
