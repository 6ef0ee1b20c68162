"""The CI bootstrap program under the synth mocks: trust, permissions, state protections."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ops.synth import Synth, record

ROOT = Path(__file__).resolve().parents[2]
REPO = "example-org/refarch"
HOST = "token.actions.githubusercontent.com"
# IAM's limit for all inline policies of one role, whitespace excluded.
INLINE_POLICY_LIMIT = 10_240


def _module() -> Any:
    name = "refarch_ci_bootstrap"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "ci" / "bootstrap" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


bootstrap = _module()


def synth(**overrides: Any) -> Synth:
    config = bootstrap.BootstrapConfig(repository=REPO, hosted_zone_ids=("Z0123456789ABCDEFGHIJ",), **overrides)
    return record(lambda: bootstrap.build(config), project="refarch-bootstrap", stack="ci", region="us-east-1")


@pytest.fixture(scope="module")
def ci() -> Synth:
    return synth()


def role(ci: Synth, name: str) -> dict[str, Any]:
    return next(r for r in ci.of_type("aws:iam/role:Role") if r["inputs"]["name"] == name)


def trust(ci: Synth, name: str) -> dict[str, Any]:
    [statement] = json.loads(role(ci, name)["inputs"]["assumeRolePolicy"])["Statement"]
    return statement


def policies_of(ci: Synth, role_name: str) -> dict[str, dict[str, Any]]:
    role_id = role(ci, role_name)["id"]
    return {p["inputs"]["name"]: json.loads(p["inputs"]["policy"])
            for p in ci.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"] == role_id}


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_deploy_role_trusts_only_this_repository_in_that_environment(ci: Synth, env: str) -> None:
    statement = trust(ci, f"refarch-ci-deploy-{env}")
    provider = ci.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert statement["Principal"] == {"Federated": provider["arn"]}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    # StringEquals, not StringLike: no wildcard can widen the subject.
    assert statement["Condition"] == {"StringEquals": {
        f"{HOST}:aud": "sts.amazonaws.com", f"{HOST}:sub": [f"repo:{REPO}:environment:{env}"]}}


def test_preview_role_trusts_pull_requests_and_the_default_branch(ci: Synth) -> None:
    condition = trust(ci, "refarch-ci-preview")["Condition"]["StringEquals"]
    assert condition[f"{HOST}:sub"] == [f"repo:{REPO}:pull_request", f"repo:{REPO}:ref:refs/heads/main"]
    assert condition[f"{HOST}:aud"] == "sts.amazonaws.com"


def test_oidc_provider_is_githubs_for_sts(ci: Synth) -> None:
    provider = ci.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider["inputs"]["url"] == "https://token.actions.githubusercontent.com"
    assert provider["inputs"]["clientIdLists"] == ["sts.amazonaws.com"]


def test_an_existing_oidc_provider_is_reused() -> None:
    arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    reused = synth(oidc_provider_arn=arn)
    assert reused.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    assert json.loads(role(reused, "refarch-ci-deploy-dev")["inputs"]["assumeRolePolicy"])[
        "Statement"][0]["Principal"] == {"Federated": arn}


def test_no_policy_grants_everything(ci: Synth) -> None:
    from ops.policy_run import evaluate

    assert [v.message for v in evaluate(ci.to_json()) if v.policy == "iam-no-admin"] == []
    for p in ci.of_type("aws:iam/rolePolicy:RolePolicy"):
        for s in json.loads(p["inputs"]["policy"])["Statement"]:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            assert "*" not in actions and "*:*" not in actions, (p["name"], s.get("Sid"))
            # A whole service on every resource only inside the region or on tagged resources.
            if s["Resource"] == "*" and any(a.endswith(":*") for a in actions):
                assert "Condition" in s, (p["name"], s["Sid"])


def test_pass_role_only_to_ecs_tasks_and_flow_logs(ci: Synth) -> None:
    for env in ("dev", "staging", "prod"):
        statements = [s for doc in policies_of(ci, f"refarch-ci-deploy-{env}").values() for s in doc["Statement"]
                      if "iam:PassRole" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
        assert [s["Resource"] for s in statements] == [[f"arn:aws:iam::123456789012:role/refarch-{env}-*"]]
        assert statements[0]["Condition"] == {"StringEquals": {
            "iam:PassedToService": ["ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com"]}}


def test_each_deploy_role_reaches_only_its_own_stack(ci: Synth) -> None:
    dev = json.dumps(policies_of(ci, "refarch-ci-deploy-dev"))
    assert "refarch-dev" in dev and "refarch-prod" not in dev and "refarch-staging" not in dev
    prod = policies_of(ci, "refarch-ci-deploy-prod")
    text = json.dumps(prod)
    # Promotion: prod reads staging's ledger and images, nothing of dev.
    assert "/refarch/staging/*" in text and "repository/refarch-staging/*" in text and "refarch-dev" not in text
    state = next(s for s in prod["delivery"]["Statement"] if s["Sid"] == "StateReadWrite")
    assert state["Resource"] == "arn:aws:s3:::refarch-pulumi-state-123456789012-us-east-1/.pulumi/*/refarch/prod*"


def test_preview_role_reads_no_data(ci: Synth) -> None:
    doc = policies_of(ci, "refarch-ci-preview")["read-only"]
    actions = {a for s in doc["Statement"] for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert not {"secretsmanager:GetSecretValue", "logs:GetLogEvents", "ecs:UpdateService"} & actions
    writes = [s for s in doc["Statement"] if {"s3:PutObject", "s3:DeleteObject"} & set(s["Action"])]
    assert [s["Resource"] for s in writes] == ["arn:aws:s3:::refarch-pulumi-state-123456789012-us-east-1/.pulumi/locks/*"]


def test_inline_policies_fit_iams_limit(ci: Synth) -> None:
    for name in ("refarch-ci-preview", *(f"refarch-ci-deploy-{e}" for e in ("dev", "staging", "prod"))):
        size = sum(len(json.dumps(doc, separators=(",", ":"))) for doc in policies_of(ci, name).values())
        assert size <= INLINE_POLICY_LIMIT, (name, size)


def test_state_bucket_is_versioned_encrypted_private_and_tls_only(ci: Synth) -> None:
    bucket = ci.one("aws:s3/bucket:Bucket")
    key = ci.one("aws:kms/key:Key")
    bucket_id = bucket["id"]
    assert ci.one("aws:s3/bucketVersioning:BucketVersioning")["inputs"] == {
        "bucket": bucket_id, "versioningConfiguration": {"status": "Enabled"}}
    [rule] = ci.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")[
        "inputs"]["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key["arn"]}
    block = ci.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")["inputs"]
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    [deny] = json.loads(ci.one("aws:s3/bucketPolicy:BucketPolicy")["inputs"]["policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [bucket["arn"], f"{bucket['arn']}/*"]
    assert key["inputs"]["enableKeyRotation"] is True


def test_state_bucket_key_and_provider_are_protected(ci: Synth) -> None:
    for type_token in ("aws:s3/bucket:Bucket", "aws:kms/key:Key",
                       "aws:iam/openIdConnectProvider:OpenIdConnectProvider"):
        assert ci.one(type_token)["options"]["protect"] is True, type_token
    assert ci.one("aws:s3/bucket:Bucket")["inputs"]["forceDestroy"] is False


def test_outputs_are_what_ci_readme_asks_for(ci: Synth) -> None:
    assert ci.outputs["PULUMI_BACKEND_URL"] == "s3://refarch-pulumi-state-123456789012-us-east-1?region=us-east-1"
    assert ci.outputs["secrets_provider"] == "awskms://alias/refarch-pulumi?region=us-east-1"
    assert set(ci.outputs["AWS_DEPLOY_ROLE_ARN"]) == {"dev", "staging", "prod"}
    readme = (ROOT / "ci" / "README.md").read_text()
    assert all(name in readme for name in ("PULUMI_BACKEND_URL", "AWS_PREVIEW_ROLE_ARN", "AWS_DEPLOY_ROLE_ARN"))


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"repository": "no-slash"}, "github_repository"),
    ({"repository": REPO, "environments": ("dev", "Prod")}, "environments"),
    ({"repository": REPO, "environments": ()}, "environments"),
])
def test_config_is_validated(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        bootstrap.BootstrapConfig(**overrides)
