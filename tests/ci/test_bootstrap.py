"""The CI bootstrap program under the synth mocks: trust, what each role may do, state, tables.

What a role may do is read from its parsed statements: `allowing` finds every statement that
could allow an action on a resource (IAM's wildcard rules for actions and ARNs), and the tests
assert on those statements' conditions. Every document is also run through parliament and
cloudsplaining in tests/iam/test_iam_analysis.py.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from ops.synth import Synth, record

ROOT = Path(__file__).resolve().parents[2]
REPO = "example-org/refarch"
HOST = "token.actions.githubusercontent.com"
ACCOUNT = "123456789012"
ENVS = ("dev", "staging", "prod")
# IAM's limit for one customer-managed policy, whitespace excluded.
MANAGED_POLICY_LIMIT = 6_144
# Contract C1 as the lead wrote it (briefs/contracts.md); the test below holds the tables to it.
C1 = """
- Lock table `<project>-deploy-locks`: partition key `stack` (S).
- Ledger table `<project>-releases`: partition key `stack` (S), sort key `release_id` (S; sorts by time).
- Both: PAY_PER_REQUEST, SSE with the bootstrap's KMS key, point-in-time recovery on, deletion protection on.
"""


def _module(name: str) -> Any:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "ci" / "bootstrap" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


bootstrap = _module("refarch_ci_bootstrap")
bootstrap_policies = _module("deploy_policies")


def synth(**overrides: Any) -> Synth:
    config = bootstrap.BootstrapConfig(**{"repository": REPO, "hosted_zone_ids": ("Z0123456789ABCDEFGHIJ",),
                                          "domains": {"prod": ("api.example.com",)}, **overrides})
    return record(lambda: bootstrap.build(config), project="refarch-bootstrap", stack="ci", region="us-east-1")


@pytest.fixture(scope="module")
def ci() -> Synth:
    return synth()


def role(ci: Synth, name: str) -> dict[str, Any]:
    return next(r for r in ci.of_type("aws:iam/role:Role") if r["inputs"]["name"] == name)


def trust(ci: Synth, name: str) -> dict[str, Any]:
    [statement] = json.loads(role(ci, name)["inputs"]["assumeRolePolicy"])["Statement"]
    return statement


def documents_of(ci: Synth, role_name: str) -> dict[str, dict[str, Any]]:
    """Every policy document of a role: inline ones by name, attached managed ones by policy name."""
    r = role(ci, role_name)
    docs = {p["inputs"]["name"]: json.loads(p["inputs"]["policy"])
            for p in ci.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"] == r["id"]}
    managed = {p["arn"]: p for p in ci.of_type("aws:iam/policy:Policy")}
    for attachment in ci.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        if attachment["inputs"]["role"] == role_name:
            policy = managed[attachment["inputs"]["policyArn"]]
            docs[policy["inputs"]["name"]] = json.loads(policy["inputs"]["policy"])
    return docs


def managed_policy(ci: Synth, name: str) -> dict[str, Any]:
    [p] = [p for p in ci.of_type("aws:iam/policy:Policy") if p["inputs"]["name"] == name]
    return json.loads(p["inputs"]["policy"])


def listed(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str) -> bool:
    # IAM wildcards: `*` any run of characters (across `/` and `:`), `?` one; actions ignore case.
    return fnmatch.fnmatchcase(value, pattern)


def allowing(docs: dict[str, dict[str, Any]], action: str, resource: str, effect: str = "Allow",
             tags: dict[str, str] | None = None) -> list[dict]:
    """The statements (of any document) that could allow -- or deny -- `action` on `resource`.

    With `tags` (the resource's own), statements that require other tag values are left out.
    """
    found = []
    for doc in docs.values():
        for s in doc["Statement"]:
            if s["Effect"] != effect:
                continue
            if not any(_matches(a.lower(), action.lower()) for a in listed(s.get("Action", []))):
                continue
            if "NotResource" in s:
                if any(_matches(r, resource) for r in listed(s["NotResource"])):
                    continue
            elif not any(_matches(r, resource) for r in listed(s["Resource"])):
                continue
            required = {k.removeprefix("aws:ResourceTag/"): v
                        for k, v in s.get("Condition", {}).get("StringEquals", {}).items()
                        if k.startswith("aws:ResourceTag/")}
            if tags is not None and any(tags.get(k) != v for k, v in required.items()):
                continue
            found.append(s)
    return found


def deploy(ci: Synth, env: str) -> dict[str, dict[str, Any]]:
    return documents_of(ci, f"refarch-ci-deploy-{env}")


def preview(ci: Synth, env: str) -> dict[str, dict[str, Any]]:
    return documents_of(ci, f"refarch-ci-preview-{env}")


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:us-east-1:{ACCOUNT}:{resource}"


def iam_arn(resource: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:{resource}"


STATE = "arn:aws:s3:::refarch-pulumi-state-123456789012-us-east-1"


# --- trust ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_deploy_role_trusts_only_this_repository_in_that_environment(ci: Synth, env: str) -> None:
    statement = trust(ci, f"refarch-ci-deploy-{env}")
    provider = ci.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert statement["Principal"] == {"Federated": provider["arn"]}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    # StringEquals, not StringLike: no wildcard can widen the subject.
    assert statement["Condition"] == {"StringEquals": {
        f"{HOST}:aud": "sts.amazonaws.com", f"{HOST}:sub": [f"repo:{REPO}:environment:{env}"]}}


@pytest.mark.parametrize("env", ENVS)
def test_each_environment_has_its_own_preview_role_for_pull_requests_and_the_default_branch(ci: Synth,
                                                                                           env: str) -> None:
    condition = trust(ci, f"refarch-ci-preview-{env}")["Condition"]["StringEquals"]
    assert condition[f"{HOST}:sub"] == [f"repo:{REPO}:pull_request", f"repo:{REPO}:ref:refs/heads/main"]
    assert condition[f"{HOST}:aud"] == "sts.amazonaws.com"


def test_oidc_provider_is_githubs_for_sts(ci: Synth) -> None:
    provider = ci.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider["inputs"]["url"] == "https://token.actions.githubusercontent.com"
    assert provider["inputs"]["clientIdLists"] == ["sts.amazonaws.com"]


def test_an_existing_oidc_provider_is_reused() -> None:
    existing = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    reused = synth(oidc_provider_arn=existing)
    assert reused.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    assert json.loads(role(reused, "refarch-ci-deploy-dev")["inputs"]["assumeRolePolicy"])[
        "Statement"][0]["Principal"] == {"Federated": existing}


# --- deploy roles: no escalation ------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_every_role_a_deploy_role_creates_or_edits_carries_its_own_boundary(ci: Synth, env: str) -> None:
    docs = deploy(ci, env)
    boundary = iam_arn(f"policy/refarch-{env}-boundary")
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:DeleteRolePolicy",
                   "iam:DetachRolePolicy", "iam:PutRolePermissionsBoundary", "iam:UpdateAssumeRolePolicy",
                   "iam:DeleteRole"):
        statements = allowing(docs, action, iam_arn(f"role/refarch-{env}-products-task"))
        assert statements, action
        for s in statements:
            assert s["Condition"]["ArnEquals"]["iam:PermissionsBoundary"] == boundary, (action, s["Sid"])
        # Nothing outside the environment's role names, and never a CI role.
        assert allowing(docs, action, iam_arn("role/refarch-other-x")) == [], action
    for ci_role in ("refarch-ci-deploy-dev", f"refarch-ci-preview-{env}", "refarch-ci-deploy-prod"):
        assert allowing(docs, "iam:UpdateAssumeRolePolicy", iam_arn(f"role/{ci_role}"), "Deny"), ci_role
        assert allowing(docs, "iam:PutRolePolicy", iam_arn(f"role/{ci_role}"), "Deny"), ci_role


@pytest.mark.parametrize("env", ENVS)
def test_no_deploy_role_can_remove_or_edit_a_boundary(ci: Synth, env: str) -> None:
    docs = deploy(ci, env)
    boundary = iam_arn(f"policy/refarch-{env}-boundary")
    assert allowing(docs, "iam:DeleteRolePermissionsBoundary", iam_arn(f"role/refarch-{env}-x")) == []
    assert allowing(docs, "iam:DeleteRolePermissionsBoundary", iam_arn(f"role/refarch-{env}-x"), "Deny")
    for action in ("iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy"):
        assert allowing(docs, action, boundary) == [], action
        assert allowing(docs, action, boundary, "Deny"), action
        # Nor the deploy role's own managed policies.
        assert allowing(docs, action, iam_arn(f"policy/refarch-ci-deploy-{env}-identity"), "Deny"), action


@pytest.mark.parametrize("env", ENVS)
def test_only_known_aws_policies_can_be_attached(ci: Synth, env: str) -> None:
    [s] = allowing(deploy(ci, env), "iam:AttachRolePolicy", iam_arn(f"role/refarch-{env}-db-monitoring"))
    assert s["Condition"]["ArnEquals"]["iam:PolicyARN"] == [
        "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"]


@pytest.mark.parametrize("env", ENVS)
def test_pass_role_only_for_its_own_roles_and_services(ci: Synth, env: str) -> None:
    docs = deploy(ci, env)
    [s] = allowing(docs, "iam:PassRole", iam_arn(f"role/refarch-{env}-products-task"))
    assert s["Condition"] == {"StringEquals": {"iam:PassedToService": [
        "ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com", "monitoring.rds.amazonaws.com",
        "lambda.amazonaws.com", "ecs.amazonaws.com", "firehose.amazonaws.com",
                                                       "appconfig.amazonaws.com"]}}
    for other in ENVS:
        if other != env:
            assert allowing(docs, "iam:PassRole", iam_arn(f"role/refarch-{other}-products-task")) == []
    assert allowing(docs, "iam:PassRole", iam_arn(f"role/refarch-ci-deploy-{env}")) == []


def test_no_statement_allows_everything_and_no_service_wildcard_goes_unbounded(ci: Synth) -> None:
    from ops.policy_run import evaluate

    # The pack's IAM rules hold for the bootstrap's own documents too.
    assert [v.message for v in evaluate(ci.to_json())
            if v.policy in ("iam-no-admin", "iam-no-escalation", "iam-ownership-fixed")] == []
    for env in ENVS:
        for name, doc in deploy(ci, env).items():
            for s in doc["Statement"]:
                actions = listed(s.get("Action", []))
                assert not {"*", "*:*", "iam:*", "sts:*"} & set(actions) or s["Effect"] == "Deny", (name, s["Sid"])
                if s["Effect"] == "Allow" and "*" in listed(s["Resource"]) and any(a.endswith("*") for a in actions):
                    assert "Condition" in s, (name, s["Sid"])
                # The old region-wide `ec2:*` / `acm:*` / `application-autoscaling:*` are gone.
                assert not {"ec2:*", "acm:*", "application-autoscaling:*"} & set(actions), (name, s["Sid"])


@pytest.mark.parametrize("env", ENVS)
def test_deploy_role_assumes_only_promotion_sources(ci: Synth, env: str) -> None:
    docs = deploy(ci, env)
    assert allowing(docs, "sts:AssumeRole", "arn:aws:iam::210987654321:role/refarch-staging-promotion-source")
    assert allowing(docs, "sts:AssumeRole", iam_arn("role/refarch-prod-products-task"), "Deny")
    assert allowing(docs, "sts:AssumeRole", iam_arn("role/refarch-ci-deploy-prod"), "Deny")


# --- KMS, EC2, ACM, autoscaling, DNS: ownership by creation-time tag ------------------------------

def test_kms_keys_cannot_change_environment_by_tagging(ci: Synth) -> None:
    docs, key = deploy(ci, "dev"), arn("kms", "key/1234abcd-prod")
    [tag] = allowing(docs, "kms:TagResource", key)
    # At CreateKey the key has no tags; an existing key only if it already is dev's; the request
    # may carry no other stack tag. So prod's key (stack=prod) can never be tagged by dev.
    assert tag["Condition"] == {"StringEqualsIfExists": {"aws:ResourceTag/stack": "dev", "aws:RequestTag/stack": "dev"}}
    [untag] = allowing(docs, "kms:UntagResource", key)
    assert untag["Condition"]["ForAllValues:StringNotEquals"] == {"aws:TagKeys": ["stack", "project"]}
    assert untag["Condition"]["StringEquals"]["aws:ResourceTag/stack"] == "dev"
    for action in ("kms:Decrypt", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CreateGrant"):
        [use] = allowing(docs, action, key)
        assert use["Condition"] == {"StringEquals": {"aws:ResourceTag/stack": "dev",
                                                     "aws:ResourceTag/project": "refarch"}}, action
    [create] = allowing(docs, "kms:CreateKey", "*")
    assert create["Condition"]["StringEquals"]["aws:RequestTag/stack"] == "dev"


def test_the_bootstraps_own_keys_belong_to_no_environment(ci: Synth) -> None:
    for key in ci.of_type("aws:kms/key:Key"):
        assert key["inputs"]["tags"]["stack"] == "ci-bootstrap"
    with pytest.raises(ValueError, match="reserved"):
        bootstrap.BootstrapConfig(repository=REPO, environments=("dev", "ci-bootstrap"))


def test_ec2_creations_need_the_stack_tag_and_everything_else_an_owned_resource(ci: Synth) -> None:
    docs = deploy(ci, "dev")
    # A new subnet only with the stack tag, inside a VPC that is already dev's.
    new = allowing(docs, "ec2:CreateSubnet", arn("ec2", "subnet/*"))
    assert [s["Condition"] for s in new] == [{"StringEquals": {"aws:RequestTag/stack": "dev"}},
                                             {"StringEquals": {"aws:ResourceTag/stack": "dev"}}]
    # The VPC it builds on is matched by no creation-time statement: it must already be dev's.
    [parent] = allowing(docs, "ec2:CreateSubnet", arn("ec2", "vpc/vpc-0prod"))
    assert parent["Condition"] == {"StringEquals": {"aws:ResourceTag/stack": "dev"}}
    for action, types in bootstrap_policies.EC2_CREATES.items():
        for s in allowing(docs, f"ec2:{action}", arn("ec2", "vpc/v")) + allowing(docs, f"ec2:{action}",
                                                                                 arn("ec2", "subnet/s")):
            if "aws:RequestTag/stack" in s["Condition"].get("StringEquals", {}):
                assert s["Resource"] == [arn("ec2", f"{t}/*") for t in types], action
    for action in ("ec2:AuthorizeSecurityGroupIngress", "ec2:DeleteVpc", "ec2:CreateRoute", "ec2:TerminateInstances"):
        for s in allowing(docs, action, arn("ec2", "security-group/sg-0")) + allowing(docs, action, arn("ec2", "vpc/v")):
            assert s["Condition"]["StringEquals"] in ({"aws:ResourceTag/stack": "dev"},
                                                      {"aws:RequestTag/stack": "dev"}), (action, s["Sid"])
    # Tags: set at creation with the stack tag, later never the ownership tags.
    [retag] = [s for s in allowing(docs, "ec2:CreateTags", arn("ec2", "vpc/v")) if s["Sid"] == "Ec2RetagOwn"]
    assert retag["Condition"]["ForAllValues:StringNotEquals"] == {"aws:TagKeys": ["stack", "project"]}
    # Only other region-wide grant: reads.
    assert [s["Sid"] for s in allowing(docs, "ec2:ModifyVpcAttribute", "*")] == []
    [read] = allowing(docs, "ec2:DescribeVpcs", "*")
    assert read["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}


def test_certificates_and_dns_records_only_for_the_environments_own_domains(ci: Synth) -> None:
    prod, dev = deploy(ci, "prod"), deploy(ci, "dev")
    [request] = allowing(prod, "acm:RequestCertificate", "*")
    assert request["Condition"]["ForAllValues:StringEquals"] == {"acm:DomainNames": ["api.example.com"]}
    assert request["Condition"]["StringEquals"]["aws:RequestTag/stack"] == "prod"
    [change] = allowing(prod, "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ")
    assert change["Condition"]["ForAllValues:StringLike"] == {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_*.api.example.com", "api.example.com"]}
    assert allowing(prod, "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/ZOTHER") == []
    # dev has no domain configured: no certificate, no record anywhere.
    assert allowing(dev, "acm:RequestCertificate", "*") == []
    assert allowing(dev, "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ") == []
    for action in ("acm:DeleteCertificate", "acm:DescribeCertificate"):
        [own] = allowing(prod, action, arn("acm", "certificate/abc"))
        assert own["Condition"]["StringEquals"] == {"aws:ResourceTag/stack": "prod"}


def test_scaling_targets_only_ecs_and_only_its_own(ci: Synth) -> None:
    docs = deploy(ci, "dev")
    [register_new, register_own] = allowing(docs, "application-autoscaling:RegisterScalableTarget",
                                            arn("application-autoscaling", "scalable-target/abc"))
    assert register_new["Condition"]["StringEquals"]["application-autoscaling:service-namespace"] == "ecs"
    assert register_new["Condition"]["Null"] == {"aws:ResourceTag/stack": "true"}
    assert register_own["Condition"]["StringEquals"] == {"aws:ResourceTag/stack": "dev"}
    [policy] = allowing(docs, "application-autoscaling:PutScalingPolicy",
                        arn("application-autoscaling", "scalable-target/abc"))
    assert policy["Condition"]["StringEquals"] == {"aws:ResourceTag/stack": "dev"}


@pytest.mark.parametrize("env", ENVS)
def test_named_resources_of_other_environments_are_out_of_reach(ci: Synth, env: str) -> None:
    docs = deploy(ci, env)
    for other in ENVS:
        if other == env:
            continue
        for action, resource in (
            ("rds:DeleteDBInstance", arn("rds", f"db:refarch-{other}-db")),
            ("elasticache:ModifyUser", arn("elasticache", f"user:refarch-{other}-cache-app")),
            ("ecs:UpdateService", arn("ecs", f"service/refarch-{other}/refarch-{other}-products")),
            ("ecs:DeregisterTaskDefinition", arn("ecs", f"task-definition/refarch-{other}-products:3")),
            ("logs:DeleteLogGroup", arn("logs", f"log-group:aws-waf-logs-refarch-{other}")),
            ("secretsmanager:GetSecretValue", arn("secretsmanager", f"secret:refarch-{other}/api-key")),
            ("s3:PutObject", f"{STATE}/.pulumi/stacks/refarch/{other}.json"),
        ):
            assert allowing(docs, action, resource) == [], (action, resource)


# --- state, tables, preview -----------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_each_role_reads_and_decrypts_only_its_own_environments_state(ci: Synth, env: str) -> None:
    for docs in (deploy(ci, env), preview(ci, env)):
        assert allowing(docs, "s3:GetObject", f"{STATE}/.pulumi/stacks/refarch/{env}.json")
        assert allowing(docs, "s3:GetObject", f"{STATE}/.pulumi/meta.yaml")
        key = ci.one("aws:kms/key:Key", "ci-state-key")
        state_key = allowing(docs, "kms:Decrypt", key["arn"], tags=key["inputs"]["tags"])
        # The one key decrypts through S3 only objects of E, through DynamoDB only the two tables.
        vias = {s["Condition"]["StringEquals"]["kms:ViaService"]: s for s in state_key}
        assert set(vias) == {"s3.us-east-1.amazonaws.com", "dynamodb.us-east-1.amazonaws.com"}
        assert vias["dynamodb.us-east-1.amazonaws.com"]["Condition"]["ForAnyValue:StringEquals"] == {
            "kms:EncryptionContext:aws:dynamodb:tableName": ["refarch-deploy-locks", "refarch-releases"]}
        contexts = vias["s3.us-east-1.amazonaws.com"]["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"]
        assert any(_matches(c, f"{STATE}/.pulumi/history/refarch/{env}/x.json") for c in contexts)
        for other in ENVS:
            if other != env:
                for path in (f"stacks/refarch/{other}.json", f"history/refarch/{other}/h.json",
                             f"locks/organization/refarch/{other}/l.json"):
                    assert allowing(docs, "s3:GetObject", f"{STATE}/.pulumi/{path}") == [], path
                    assert not any(_matches(c, f"{STATE}/.pulumi/{path}") for c in contexts), path
                secrets = ci.one("aws:kms/key:Key", f"ci-{other}-secrets-key")
                assert allowing(docs, "kms:Decrypt", secrets["arn"], tags=secrets["inputs"]["tags"]) == [], other
        assert allowing(docs, "kms:Decrypt", ci.one("aws:kms/key:Key", f"ci-{env}-secrets-key")["arn"])


def test_state_objects_are_encrypted_per_object_not_with_a_bucket_key(ci: Synth) -> None:
    [rule] = ci.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")[
        "inputs"]["rules"]
    assert rule["bucketKeyEnabled"] is False
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == ci.one("aws:kms/key:Key", "ci-state-key")["arn"]


@pytest.mark.parametrize("env", ENVS)
def test_preview_role_writes_nothing_and_reads_no_data(ci: Synth, env: str) -> None:
    docs = preview(ci, env)
    actions = {a for doc in docs.values() for s in doc["Statement"] for a in listed(s["Action"])}
    writes = {a for a in actions if re.search(r":(Put|Delete|Update|Create|Modify|Tag|Untag)", a)}
    assert writes == set()
    assert not {"secretsmanager:GetSecretValue", "logs:GetLogEvents", "s3:PutObject", "kms:Encrypt"} & actions
    for table in ("refarch-deploy-locks", "refarch-releases"):
        assert allowing(docs, "dynamodb:PutItem", arn("dynamodb", f"table/{table}")) == []
        assert allowing(docs, "dynamodb:UpdateItem", arn("dynamodb", f"table/{table}")) == []
    [ledger] = allowing(docs, "dynamodb:Query", arn("dynamodb", "table/refarch-releases"))
    assert ledger["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [env]}}
    assert allowing(docs, "dynamodb:Query", arn("dynamodb", "table/refarch-deploy-locks")) == []


@pytest.mark.parametrize("env", ENVS)
def test_deploy_role_writes_only_its_own_items_of_the_lock_and_ledger(ci: Synth, env: str) -> None:
    docs = deploy(ci, env)
    for table in ("refarch-deploy-locks", "refarch-releases"):
        for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                       "dynamodb:Query", "dynamodb:ConditionCheckItem"):
            [s] = allowing(docs, action, arn("dynamodb", f"table/{table}"))
            assert s["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [env]}}
        assert allowing(docs, "dynamodb:DeleteTable", arn("dynamodb", f"table/{table}")) == []


def test_tables_follow_contract_c1(ci: Synth) -> None:
    tables = {t["inputs"]["name"]: t for t in ci.of_type("aws:dynamodb/table:Table")}
    key_arn = ci.one("aws:kms/key:Key", "ci-state-key")["arn"]
    specs = re.findall(r"`<project>-([\w-]+)`: partition key `(\w+)` \(S\)(?:, sort key `(\w+)` \(S)?", C1)
    assert len(specs) == 2
    for suffix, partition, sort in specs:
        t = tables[f"refarch-{suffix}"]
        i = t["inputs"]
        assert i["hashKey"] == partition and i.get("rangeKey") == (sort or None)
        assert i["attributes"] == [{"name": k, "type": "S"} for k in (partition, sort) if k]
        assert i["billingMode"] == "PAY_PER_REQUEST"
        assert i["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": key_arn}
        assert i["pointInTimeRecovery"] == {"enabled": True}
        assert i["deletionProtectionEnabled"] is True
        assert "ttl" not in i
        assert t["options"]["protect"] is True
    assert ci.outputs["lock_table"] == "refarch-deploy-locks" and ci.outputs["ledger_table"] == "refarch-releases"


# --- promotion source (C1) -------------------------------------------------------------------------

def test_promotion_source_is_trusted_by_the_next_deploy_role_and_only_reads(ci: Synth) -> None:
    assert set(ci.outputs["promotion_source_role_arns"]) == {"dev", "staging"}
    statement = trust(ci, "refarch-dev-promotion-source")
    assert statement == {"Effect": "Allow", "Principal": {"AWS": [iam_arn("role/refarch-ci-deploy-staging")]},
                         "Action": "sts:AssumeRole"}
    docs = documents_of(ci, "refarch-dev-promotion-source")
    [ledger] = allowing(docs, "dynamodb:Query", arn("dynamodb", "table/refarch-releases"))
    assert ledger["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["dev"]}}
    assert allowing(docs, "dynamodb:GetItem", arn("dynamodb", "table/refarch-deploy-locks")) == []
    assert allowing(docs, "ecr:BatchGetImage", arn("ecr", "repository/refarch-dev/products"))
    assert allowing(docs, "ecr:BatchGetImage", arn("ecr", "repository/refarch-staging/products")) == []
    assert allowing(docs, "ecr:PutImage", arn("ecr", "repository/refarch-dev/products")) == []


def test_promotion_readers_from_another_account() -> None:
    reader = "arn:aws:iam::210987654321:role/refarch-ci-deploy-prod"
    s = synth(environments=("staging",), domains={}, promotion_readers={"staging": (reader,)})
    assert trust(s, "refarch-staging-promotion-source")["Principal"] == {"AWS": [reader]}
    assert synth(environments=("prod",), domains={"prod": ("api.example.com",)}).outputs[
        "promotion_source_role_arns"] == {}


# --- sizes, state bucket, outputs, config ----------------------------------------------------------

def test_managed_policies_fit_iams_limit(ci: Synth) -> None:
    policies = ci.of_type("aws:iam/policy:Policy")
    assert len(policies) == 8 * len(ENVS)  # the boundary and seven deploy parts
    for p in policies:
        size = len(re.sub(r"\s", "", json.dumps(json.loads(p["inputs"]["policy"]))))
        assert size <= MANAGED_POLICY_LIMIT, (p["inputs"]["name"], size)
    # IAM's default quota: 10 managed policies per role.
    assert len(documents_of(ci, "refarch-ci-deploy-prod")) == 7


def test_state_bucket_is_versioned_encrypted_private_and_tls_only(ci: Synth) -> None:
    bucket = ci.one("aws:s3/bucket:Bucket")
    assert ci.one("aws:s3/bucketVersioning:BucketVersioning")["inputs"] == {
        "bucket": bucket["id"], "versioningConfiguration": {"status": "Enabled"}}
    block = ci.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")["inputs"]
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    [deny] = json.loads(ci.one("aws:s3/bucketPolicy:BucketPolicy")["inputs"]["policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [bucket["arn"], f"{bucket['arn']}/*"]
    assert all(k["inputs"]["enableKeyRotation"] is True for k in ci.of_type("aws:kms/key:Key"))


def test_state_keys_tables_and_provider_are_protected(ci: Synth) -> None:
    for type_token in ("aws:s3/bucket:Bucket", "aws:iam/openIdConnectProvider:OpenIdConnectProvider"):
        assert ci.one(type_token)["options"]["protect"] is True, type_token
    for type_token in ("aws:kms/key:Key", "aws:dynamodb/table:Table"):
        assert {r["options"]["protect"] for r in ci.of_type(type_token)} == {True}, type_token
    assert ci.one("aws:s3/bucket:Bucket")["inputs"]["forceDestroy"] is False


def test_waf_delivers_logs_through_an_account_policy_not_a_deploy_role(ci: Synth) -> None:
    policy = ci.one("aws:cloudwatch/logResourcePolicy:LogResourcePolicy", "ci-waf-log-delivery")["inputs"]
    [s] = json.loads(policy["policyDocument"])["Statement"]
    assert s["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert s["Resource"] == arn("logs", "log-group:aws-waf-logs-*:log-stream:*")
    assert s["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    for env in ENVS:
        assert allowing(deploy(ci, env), "logs:PutResourcePolicy", "*") == []


def test_stack_event_rules_deliver_to_their_groups_through_an_account_policy(ci: Synth) -> None:
    policy = ci.one("aws:cloudwatch/logResourcePolicy:LogResourcePolicy", "ci-event-log-delivery")["inputs"]
    [s] = json.loads(policy["policyDocument"])["Statement"]
    assert s["Principal"] == {"Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]}
    assert s["Resource"] == arn("logs", "log-group:/aws/events/refarch-*:log-stream:*")
    assert s["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                              "ArnLike": {"aws:SourceArn": arn("events", "rule/refarch-*")}}
    for env in ENVS:
        assert allowing(deploy(ci, env), "events:PutTargets", arn("events", f"rule/refarch-{env}-ecs-deployments"))
        assert not allowing(deploy(ci, env), "events:PutTargets", arn("events", "rule/other-rule"))


def test_outputs_are_what_ci_readme_asks_for(ci: Synth) -> None:
    assert ci.outputs["PULUMI_BACKEND_URL"] == f"s3://refarch-pulumi-state-{ACCOUNT}-us-east-1?region=us-east-1"
    assert ci.outputs["secrets_providers"] == {
        env: f"awskms://alias/refarch-pulumi-{env}?region=us-east-1" for env in ENVS}
    for output in ("AWS_DEPLOY_ROLE_ARN", "AWS_PREVIEW_ROLE_ARN", "permissions_boundary_arns"):
        assert set(ci.outputs[output]) == set(ENVS), output
    assert ci.outputs["permissions_boundary_arns"]["prod"] == iam_arn("policy/refarch-prod-boundary")
    readme = (ROOT / "ci" / "README.md").read_text()
    assert all(name in readme for name in ("PULUMI_BACKEND_URL", "AWS_PREVIEW_ROLE_ARN", "AWS_DEPLOY_ROLE_ARN",
                                            "secrets_providers", "promotion_source_role_arns"))


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"repository": "no-slash"}, "github_repository"),
    ({"repository": REPO, "environments": ("dev", "Prod")}, "environments"),
    ({"repository": REPO, "environments": ()}, "environments"),
    ({"repository": REPO, "domains": {"qa": ("qa.example.com",)}}, r"domains\.qa: not one of the environments"),
    ({"repository": REPO, "domains": {"prod": ("API.example.com",)}}, "not a lower-case DNS name"),
    ({"repository": REPO, "promotion_readers": {"dev": ("someone",)}}, "is not an IAM role ARN"),
])
def test_config_is_validated(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        bootstrap.BootstrapConfig(**overrides)


# --- the edge and flags parts: CloudFront, edge WAF and logs, Cognito, AppConfig -------------------

CF = f"arn:aws:cloudfront::{ACCOUNT}"


@pytest.mark.parametrize("env", ENVS)
def test_edge_and_flags_resources_are_changed_only_when_tagged_as_this_stacks(ci: Synth, env: str) -> None:
    docs = deploy(ci, env)
    tagged = (
        ("cloudfront:UpdateDistribution", f"{CF}:distribution/E2ABCDEF"),
        ("cloudfront:DeleteVpcOrigin", f"{CF}:vpcorigin/vo_abc"),
        ("cognito-idp:DeleteUserPool", arn("cognito-idp", "userpool/us-east-1_abc")),
        ("cognito-idp:CreateUserPoolClient", arn("cognito-idp", "userpool/us-east-1_abc")),
        ("appconfig:StartDeployment", arn("appconfig", "application/abc1234/environment/def5678")),
        ("appconfig:DeleteApplication", arn("appconfig", "application/abc1234")),
    )
    for action, resource in tagged:
        assert allowing(docs, action, resource, tags={"stack": env}), (action, resource)
        for other in ENVS:
            if other != env:
                assert allowing(docs, action, resource, tags={"stack": other}) == [], (action, other)


@pytest.mark.parametrize("env", ENVS)
def test_edge_waf_and_logs_of_other_environments_are_out_of_reach(ci: Synth, env: str) -> None:
    docs = deploy(ci, env)
    edge = f"arn:aws:{{}}:us-east-1:{ACCOUNT}:{{}}"
    assert allowing(docs, "wafv2:UpdateWebACL", edge.format("wafv2", f"global/webacl/refarch-{env}-edge-acl/1"))
    assert allowing(docs, "logs:PutRetentionPolicy", edge.format("logs", f"log-group:aws-waf-logs-refarch-{env}-edge"))
    for other in ENVS:
        if other != env:
            assert allowing(docs, "wafv2:DeleteWebACL",
                            edge.format("wafv2", f"global/webacl/refarch-{other}-edge-acl/1")) == []
            assert allowing(docs, "logs:DeleteLogGroup",
                            edge.format("logs", f"log-group:/aws/cloudfront/refarch-{other}")) == []
            assert allowing(docs, "logs:DeleteDeliverySource",
                            edge.format("logs", f"delivery-source:refarch-{other}-edge")) == []


def test_stack_roles_may_read_flags_and_appconfig_may_watch_the_monitor(ci: Synth) -> None:
    boundary = json.loads(ci.one("aws:iam/policy:Policy", "ci-dev-boundary")["inputs"]["policy"])
    assert allowing({"b": boundary}, "appconfig:GetLatestConfiguration",
                    arn("appconfig", "application/abc1234/environment/def5678/configuration/ghi9012"))
    assert allowing({"b": boundary}, "appconfig:StartDeployment",
                    arn("appconfig", "application/abc1234/environment/def5678")) == []
    assert allowing(deploy(ci, "dev"), "iam:PassRole", iam_arn("role/refarch-dev-flags-monitor"))
