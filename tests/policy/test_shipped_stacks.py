"""The shipped stacks against the pack: no mandatory violation, and the pack really reads them.

The mutation tests change one property of a real synth and expect the matching policy to fire:
they prove the clean result above comes from inspecting the architecture, not from policies that
never match its resources.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from ops.policy_run import Violation, command, evaluate
from ops.synth import Synth


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stack_passes_every_mandatory_policy(synths: dict[str, Synth], stack: str) -> None:
    mandatory = [f"{v.policy}: {v.name}: {v.message}" for v in evaluate(synths[stack].to_json())
                 if v.level == "mandatory"]
    assert mandatory == []


def test_dev_advisories_are_the_documented_opt_outs(dev: Synth) -> None:
    # dev has no domain: the edge runs on the *.cloudfront.net certificate (TLSv1 floor, fixed by AWS), and
    # its writes carry no token check at the gateway; both surface as advice, never silently.
    policies = {v.policy for v in evaluate(dev.to_json()) if v.level == "advisory"}
    assert {"edge-default-certificate-advisory", "route-write-auth-advisory"} <= policies


def _mutated(synth: Synth, change: Callable[[list[dict[str, Any]]], None]) -> list[Violation]:
    document = copy.deepcopy(synth.to_json())
    change(document["resources"])
    return evaluate(document)


def _one(resources: list[dict[str, Any]], type_token: str) -> dict[str, Any]:
    [found] = [r for r in resources if r["type"] == type_token]
    return found


def _open_ssh(resources: list[dict[str, Any]]) -> None:
    rule = next(r for r in resources if r["type"] == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
                and r["inputs"].get("prefixListId"))
    rule["inputs"].pop("prefixListId")
    rule["inputs"].update(cidrIpv4="0.0.0.0/0", fromPort=22, toPort=22)


def _cache_in_public_subnets(resources: list[dict[str, Any]]) -> None:
    public = [r["id"] for r in resources if r["type"] == "aws:ec2/subnet:Subnet" and "public" in r["name"]]
    _one(resources, "aws:elasticache/subnetGroup:SubnetGroup")["inputs"]["subnetIds"] = public


def _drop_waf(resources: list[dict[str, Any]]) -> None:
    _one(resources, "aws:cloudfront/distribution:Distribution")["inputs"].pop("webAclId")


def _force_ssl_off(resources: list[dict[str, Any]]) -> None:
    group = _one(resources, "aws:rds/parameterGroup:ParameterGroup")
    group["inputs"]["parameters"] = [p for p in group["inputs"]["parameters"] if p["name"] != "rds.force_ssl"]


def _untag_vpc(resources: list[dict[str, Any]]) -> None:
    del _one(resources, "aws:ec2/vpc:Vpc")["inputs"]["tags"]["managed-by"]


def _writable_root(resources: list[dict[str, Any]]) -> None:
    task = next(r for r in resources if r["type"] == "aws:ecs/taskDefinition:TaskDefinition")
    task["inputs"]["containerDefinitions"] = task["inputs"]["containerDefinitions"].replace(
        '"readonlyRootFilesystem": true', '"readonlyRootFilesystem": false')


def _unprotected_database(resources: list[dict[str, Any]]) -> None:
    _one(resources, "aws:rds/instance:Instance")["inputs"]["deletionProtection"] = False


def _short_flow_logs(resources: list[dict[str, Any]]) -> None:
    group = next(r for r in resources if r["type"] == "aws:cloudwatch/logGroup:LogGroup"
                 and r["inputs"]["name"].endswith("/vpc/flow-logs"))
    group["inputs"]["retentionInDays"] = 90


def _waf_logs_cookies(resources: list[dict[str, Any]]) -> None:
    logging = _one(resources, "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    logging["inputs"]["redactedFields"] = [f for f in logging["inputs"]["redactedFields"]
                                           if f["singleHeader"]["name"] != "cookie"]


def _no_sqli_rules(resources: list[dict[str, Any]]) -> None:
    acl = _one(resources, "aws:wafv2/webAcl:WebAcl")
    acl["inputs"]["rules"] = [r for r in acl["inputs"]["rules"] if "SQLi" not in json.dumps(r.get("statement", {}))]


def _unversioned_access_logs(resources: list[dict[str, Any]]) -> None:
    resources.remove(next(r for r in resources if r["name"] == "gateway-access-logs-versioning"))


def _no_enhanced_monitoring(resources: list[dict[str, Any]]) -> None:
    db = _one(resources, "aws:rds/instance:Instance")["inputs"]
    db["monitoringInterval"] = 0
    del db["monitoringRoleArn"]


def _cache_auth_token(resources: list[dict[str, Any]]) -> None:
    _one(resources, "aws:elasticache/replicationGroup:ReplicationGroup")["inputs"]["authToken"] = "[secret]"


def _service_gets_master_secret(resources: list[dict[str, Any]]) -> None:
    task = next(r for r in resources if r["name"] == "services-products-task")
    migrate = next(r for r in resources if r["name"] == "services-products-migrate")
    task["inputs"]["containerDefinitions"] = migrate["inputs"]["containerDefinitions"]


def _unbounded_role(resources: list[dict[str, Any]]) -> None:
    del next(r for r in resources if r["type"] == "aws:iam/role:Role")["inputs"]["permissionsBoundary"]


def _unencrypted_app_logs(resources: list[dict[str, Any]]) -> None:
    del next(r for r in resources if r["type"] == "aws:cloudwatch/logGroup:LogGroup"
             and r["inputs"]["name"].startswith("/ecs/"))["inputs"]["kmsKeyId"]


def _key_for_every_log_group(resources: list[dict[str, Any]]) -> None:
    key = _one(resources, "aws:kms/key:Key")
    policy = json.loads(key["inputs"]["policy"])
    for statement in policy["Statement"]:
        if statement["Sid"] == "CloudWatchLogsEncrypts":
            statement["Condition"] = {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                                  "arn:aws:logs:us-east-1:123456789012:*"}}
    key["inputs"]["policy"] = json.dumps(policy)


@pytest.mark.parametrize(("stack", "change", "policy"), [
    ("prod", _short_flow_logs, "prod-audit-log-retention"),
    ("prod", _waf_logs_cookies, "waf-logs-redacted"),
    ("prod", _no_sqli_rules, "waf-managed-rule-groups"),
    ("prod", _unversioned_access_logs, "access-log-bucket-versioned"),
    ("prod", _no_enhanced_monitoring, "rds-enhanced-monitoring"),
    ("staging", _cache_auth_token, "cache-user-auth"),
    ("dev", _service_gets_master_secret, "ecs-service-no-master-secret"),
    ("prod", _unbounded_role, "iam-role-boundary"),
    ("dev", _unencrypted_app_logs, "log-group-kms"),
    ("dev", _key_for_every_log_group, "kms-logs-encryption-context"),
    ("dev", _open_ssh, "sg-no-public-ingress"),
    ("dev", _cache_in_public_subnets, "data-stores-isolated"),
    ("dev", _force_ssl_off, "rds-force-ssl"),
    ("dev", _untag_vpc, "required-tags"),
    ("dev", _writable_root, "ecs-read-only-root"),
    ("prod", _drop_waf, "edge-waf"),
    ("prod", _unprotected_database, "prod-stateful-protected"),
], ids=lambda v: getattr(v, "__name__", v))
def test_a_weakened_stack_is_caught(synths: dict[str, Synth], stack: str, change: Callable[..., None],
                                    policy: str) -> None:
    found = [v for v in _mutated(synths[stack], change) if v.level == "mandatory"]
    assert [v.policy for v in found] == [policy], [v.message for v in found]


def test_invoke_policy_fails_on_a_mandatory_violation(dev: Synth, tmp_path, capsys) -> None:
    import json

    from ops.errors import OpsError

    clean = tmp_path / "dev.json"
    clean.write_text(json.dumps(dev.to_json()))
    assert all(v.level == "advisory" for v in command("dev", str(clean)))
    capsys.readouterr()

    weakened = copy.deepcopy(dev.to_json())
    _open_ssh(weakened["resources"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(weakened))
    with pytest.raises(OpsError) as failure:
        command("dev", str(bad))
    assert failure.value.code == 1 and "1 mandatory" in failure.value.message
    printed = capsys.readouterr().out
    # Grouped by resource, the mandatory one first.
    assert printed.index("sg-no-public-ingress") < printed.index("edge-default-certificate-advisory")
    assert "gateway-alb-in-80" in printed


def test_invoke_policy_reports_an_unreadable_synth_file(tmp_path) -> None:
    from ops.errors import OpsError

    with pytest.raises(OpsError, match="missing.json: no such synth file"):
        command("dev", str(tmp_path / "missing.json"))
