"""The security floor across the shipped stacks: log encryption, audit retention, role boundaries."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from infra.aws.identity import boundary_name
from infra.config import parse
from ops import stackfile
from ops.synth import Synth

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "staging", "prod")
AUDIT_GROUPS = ("/vpc/flow-logs", "aws-waf-logs-", "/aws/rds/instance/", "/aws/cloudfront/")


def key_of(s: Synth) -> dict:
    return s.one("aws:kms/key:Key")


def logs_statement(s: Synth) -> dict:
    [statement] = [st for st in json.loads(key_of(s)["inputs"]["policy"])["Statement"]
                   if st["Sid"] == "CloudWatchLogsEncrypts"]
    return statement


@pytest.mark.parametrize("stack", STACKS)
def test_every_log_group_is_encrypted_with_the_stack_key_which_serves_only_its_groups(synths, stack):
    s = synths[stack]
    statement = logs_statement(s)
    assert statement["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    patterns = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert all(":log-group:" in p and f"refarch-{stack}" in p for p in patterns), patterns
    groups = s.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert groups
    for group in groups:
        assert group["inputs"]["kmsKeyId"] == key_of(s)["arn"], group["name"]
        arn = f"arn:aws:logs:us-east-1:123456789012:log-group:{group['inputs']['name']}"
        assert any(fnmatch.fnmatchcase(arn, p) for p in patterns), arn
    # Another stack's groups are not covered.
    other = "prod" if stack != "prod" else "dev"
    assert not any(fnmatch.fnmatchcase(f"arn:aws:logs:us-east-1:123456789012:log-group:/ecs/refarch-{other}/x", p)
                   for p in patterns)


@pytest.mark.parametrize("stack", STACKS)
def test_audit_logs_follow_the_audit_retention_and_application_logs_the_stack(synths, stack):
    cfg = parse(stackfile.read_values(stack), stack, f"stacks/Pulumi.{stack}.yaml")
    for group in synths[stack].of_type("aws:cloudwatch/logGroup:LogGroup"):
        name, days = group["inputs"]["name"], group["inputs"]["retentionInDays"]
        audit = any(marker in name for marker in AUDIT_GROUPS)
        expected = cfg.monitoring.audit_log_retention_days if audit else cfg.monitoring.log_retention_days
        assert days == expected, name
        if stack == "prod" and audit:
            assert days >= 365, name
    [rule] = synths[stack].one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                               "gateway-access-logs-expiry")["inputs"]["rules"]
    assert rule["expiration"]["days"] == cfg.monitoring.audit_log_retention_days


def _bootstrap_documents():
    name = "bootstrap_documents"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "ci" / "bootstrap" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


@pytest.mark.parametrize("stack", STACKS)
def test_every_role_carries_the_boundary_the_bootstrap_creates_for_its_environment(synths, stack):
    expected = f"arn:aws:iam::123456789012:policy/{_bootstrap_documents().boundary_name('refarch', stack)}"
    assert boundary_name(f"refarch-{stack}") == _bootstrap_documents().boundary_name("refarch", stack)
    roles = synths[stack].of_type("aws:iam/role:Role")
    assert roles
    for role in roles:
        assert role["inputs"]["permissionsBoundary"] == expected, role["inputs"]["name"]
        # And only names the environment's deploy role may create.
        assert role["inputs"]["name"].startswith(f"refarch-{stack}-"), role["inputs"]["name"]


def test_the_boundary_can_be_switched_off_for_stacks_without_the_bootstrap(config_of):
    from ops.synth import run

    cfg = config_of("dev", delivery={"protected": False, "allowed_branches": ["*"],
                                     "permissions_boundary": False})
    roles = run(cfg, "dev").of_type("aws:iam/role:Role")
    assert roles and all("permissionsBoundary" not in r["inputs"] for r in roles)
