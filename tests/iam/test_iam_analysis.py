"""Every IAM document both Pulumi programs create, through the maintained analyzers from PyPI.

- cloudsplaining (Salesforce): privilege escalation paths, resource exposure (permissions
  management), data exfiltration and credentials exposure. Run with `flag_conditional_statements`
  so that a condition it cannot evaluate never hides a finding.
- parliament (Duo Labs): malformed statements, unknown actions, condition keys an action does not
  support, resources an action cannot take, condition operators of the wrong type.

Privilege escalation: zero findings, no exception possible. Any other finding must match an entry
of `iam_exceptions.yaml`, each with its reason, and every entry must still match a finding.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.synth import Synth, record

ROOT = Path(__file__).resolve().parents[2]
EXCEPTIONS = Path(__file__).with_name("iam_exceptions.yaml")
IDENTITY = {"aws:iam/policy:Policy": "policy", "aws:iam/rolePolicy:RolePolicy": "policy"}
RESOURCE = {"aws:kms/key:Key": "policy", "aws:s3/bucketPolicy:BucketPolicy": "policy",
            "aws:sns/topicPolicy:TopicPolicy": "policy",
            "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": "policyDocument"}
CLOUDSPLAINING_CHECKS = ("allows_privilege_escalation", "permissions_management_without_constraints",
                         "allows_data_exfiltration_actions", "credentials_exposure")


@dataclass(frozen=True)
class Document:
    program: str  # "bootstrap", or the stack
    policy: str  # the resource's logical name
    kind: str  # identity, resource, trust
    body: dict[str, Any]


@dataclass(frozen=True)
class Finding:
    analyzer: str
    check: str
    program: str
    policy: str
    sid: str
    detail: str

    def __str__(self) -> str:
        return f"{self.analyzer} {self.check} {self.program}:{self.policy} [{self.sid}] {self.detail}"


def _bootstrap() -> Synth:
    name = "refarch_ci_bootstrap"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "ci" / "bootstrap" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    module = sys.modules[name]
    config = module.BootstrapConfig(repository="example-org/refarch", hosted_zone_ids=("Z0123456789ABCDEFGHIJ",),
                                    domains={"staging": ("staging.example.com",), "prod": ("api.example.com",)})
    return record(lambda: module.build(config), project="refarch-bootstrap", stack="ci", region="us-east-1")


def documents(synth: Synth, program: str) -> list[Document]:
    found = []
    for r in synth.resources:
        if r["type"] in IDENTITY:
            found.append(Document(program, r["name"], "identity", json.loads(r["inputs"][IDENTITY[r["type"]]])))
        elif r["type"] in RESOURCE and r["inputs"].get(RESOURCE[r["type"]]):
            found.append(Document(program, r["name"], "resource", json.loads(r["inputs"][RESOURCE[r["type"]]])))
        elif r["type"] == "aws:iam/role:Role":
            found.append(Document(program, r["name"], "trust", json.loads(r["inputs"]["assumeRolePolicy"])))
            for inline in r["inputs"].get("inlinePolicies") or []:
                found.append(Document(program, f"{r['name']}/{inline['name']}", "identity", json.loads(inline["policy"])))
    return found


def _parliament(doc: Document) -> list[Finding]:
    from parliament import analyze_policy_string

    out = []
    for i, statement in enumerate(doc.body["Statement"]):
        # One statement at a time, so each finding names its statement.
        single = {"Version": doc.body.get("Version", "2012-10-17"), "Statement": [statement]}
        for f in analyze_policy_string(json.dumps(single)).findings:
            out.append(Finding("parliament", f.issue, doc.program, doc.policy, statement.get("Sid", f"#{i}"),
                               json.dumps(f.detail, sort_keys=True, default=str)))
    return out


def _cloudsplaining(doc: Document) -> list[Finding]:
    from cloudsplaining.scan.policy_document import PolicyDocument

    if doc.kind != "identity":
        return []  # it reads identity policies; the others have principals instead
    analysis = PolicyDocument(doc.body, flag_conditional_statements=True)
    out = []
    for check in CLOUDSPLAINING_CHECKS:
        result = getattr(analysis, check)
        for item in result:
            detail = item["type"] if isinstance(item, dict) else str(item)
            out.append(Finding("cloudsplaining", check, doc.program, doc.policy, "*", detail))
    return out


def analyze(docs: list[Document]) -> list[Finding]:
    return [f for doc in docs for f in (*_parliament(doc), *_cloudsplaining(doc))]


@pytest.fixture(scope="module")
def all_documents(synths: dict[str, Synth]) -> list[Document]:
    docs = documents(_bootstrap(), "bootstrap")
    for stack, synth in synths.items():
        docs += documents(synth, stack)
    return docs


@pytest.fixture(scope="module")
def findings(all_documents: list[Document]) -> list[Finding]:
    return analyze(all_documents)


def _exceptions() -> list[dict[str, Any]]:
    return yaml.safe_load(EXCEPTIONS.read_text())["exceptions"]


def _listed(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def _matches(entry: dict[str, Any], finding: Finding) -> bool:
    return (entry["analyzer"] == finding.analyzer and fnmatch.fnmatchcase(finding.check, entry["check"])
            and finding.program in entry.get("programs", [finding.program])
            and fnmatch.fnmatchcase(finding.policy, entry["policy"])
            and any(fnmatch.fnmatchcase(finding.sid, sid) for sid in _listed(entry.get("sid", "*")))
            and fnmatch.fnmatchcase(finding.detail, entry.get("detail", "*")))


def test_every_program_and_kind_of_document_is_analyzed(all_documents: list[Document]) -> None:
    seen = {(d.program, d.kind) for d in all_documents}
    for program in ("bootstrap", "dev", "staging", "prod"):
        assert {(program, "identity"), (program, "trust"), (program, "resource")} <= seen, program
    policies = {(d.program, d.policy) for d in all_documents}
    # The roles that matter most, by name.
    for program, policy in (("bootstrap", "ci-prod-deploy-identity"), ("bootstrap", "ci-prod-boundary"),
                            ("bootstrap", "ci-prod-preview-read"), ("bootstrap", "ci-dev-promotion-source-read"),
                            ("prod", "services-products-task-data"), ("prod", "services-products-execution-policy"),
                            ("prod", "network-flow-logs-write"), ("prod", "encryption-key")):
        assert (program, policy) in policies, (program, policy)


def test_no_policy_allows_privilege_escalation(findings: list[Finding]) -> None:
    assert [str(f) for f in findings if f.check == "allows_privilege_escalation"] == []


def test_every_other_finding_is_a_written_down_exception(findings: list[Finding]) -> None:
    exceptions = _exceptions()
    assert [str(f) for f in findings if not any(_matches(e, f) for e in exceptions)] == []


def test_no_exception_is_stale_or_without_a_reason(findings: list[Finding]) -> None:
    for entry in _exceptions():
        assert entry["check"] != "allows_privilege_escalation", entry
        assert len(entry.get("reason", "").split()) >= 8, f"exception without a real reason: {entry}"
        assert any(_matches(entry, f) for f in findings), f"stale exception (matches no finding): {entry}"


def test_the_analyzers_run_offline_and_catch_what_they_are_for() -> None:
    # The bootstrap's old deploy policy, in miniature: they must flag it, or the clean run means nothing.
    old = Document("probe", "old-deploy", "identity", {"Version": "2012-10-17", "Statement": [
        {"Sid": "Roles", "Effect": "Allow", "Action": ["iam:CreatePolicyVersion", "iam:PassRole", "ec2:RunInstances"],
         "Resource": "*"},
        {"Sid": "Wide", "Effect": "Allow", "Action": ["ec2:*", "kms:TagResource"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1", "kms:NoSuchKey": "x"}}},
        {"Sid": "Data", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
    ]})
    checks = {(f.analyzer, f.check) for f in analyze([old])}
    assert ("cloudsplaining", "allows_privilege_escalation") in checks
    assert ("cloudsplaining", "allows_data_exfiltration_actions") in checks
    assert ("parliament", "UNKNOWN_CONDITION_FOR_ACTION") in checks


def _grants(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Whether any Allow statement could grant `action` on `resource` (IAM wildcards; a condition,
    NotAction or NotResource counts as granting, so that a `False` here is a real refusal)."""
    def listed(value: str | list[str]) -> list[str]:
        return value if isinstance(value, list) else [value]

    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        actions = "NotAction" in st or any(fnmatch.fnmatch(action.lower(), a.lower()) for a in listed(st["Action"]))
        resources = "NotResource" in st or any(fnmatch.fnmatchcase(resource, r) for r in listed(st["Resource"]))
        if actions and resources:
            return True
    return False


@pytest.mark.parametrize("stack", ("dev", "staging", "prod"))
def test_a_task_role_puts_events_on_its_own_stacks_stream_and_no_other(synths: dict[str, Synth], stack: str) -> None:
    synth = synths[stack]
    role = synth.one("aws:iam/role:Role", "services-products-task-role")
    statements = [st for r in synth.of_type("aws:iam/rolePolicy:RolePolicy") if r["inputs"]["role"] == role["id"]
                  for st in json.loads(r["inputs"]["policy"])["Statement"]]
    own = synth.one("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")["arn"]
    streams = "arn:aws:firehose:us-east-1:123456789012:deliverystream"
    for action in ("firehose:PutRecord", "firehose:PutRecordBatch"):
        assert _grants(statements, action, own), action
        for other in ({"dev", "staging", "prod"} - {stack}):
            assert not _grants(statements, action, f"{streams}/refarch-{other}-events"), (action, other)
        assert not _grants(statements, action, f"{streams}/someone-elses-stream")
        assert not _grants(statements, action, own.replace("us-east-1", "eu-west-1"))
    assert not _grants(statements, "firehose:DeleteDeliveryStream", own)
    assert not _grants(statements, "firehose:UpdateDestination", own)
