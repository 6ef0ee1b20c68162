"""The analytics policies: a failing and a passing case each, and the shipped stacks weakened."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ops.policy_run import evaluate, load_policies
from tests.policy.test_policies import TAGS, of, res

ANALYTICS_POLICIES = [p.name for p in load_policies().POLICIES if p.name.startswith(("firehose-", "athena-"))]
FIREHOSE = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
WORKGROUP = "aws:athena/workgroup:Workgroup"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1"
SSE = {"enabled": True, "keyType": "CUSTOMER_MANAGED_CMK", "keyArn": KEY}
RESULTS = {"outputLocation": "s3://b/athena-results/",
           "encryptionConfiguration": {"encryptionOption": "SSE_KMS", "kmsKeyArn": KEY}}


def stream(**overrides: Any) -> dict[str, Any]:
    inputs = {"destination": "extended_s3", "serverSideEncryption": SSE, "tags": TAGS, **overrides}
    return res(FIREHOSE, "events", **{k: v for k, v in inputs.items() if v is not None})


def workgroup(**configuration: Any) -> dict[str, Any]:
    conf = {"enforceWorkgroupConfiguration": True, "bytesScannedCutoffPerQuery": 1024**3,
            "resultConfiguration": RESULTS, **configuration}
    return res(WORKGROUP, "analytics", configuration={k: v for k, v in conf.items() if v is not None}, tags=TAGS)


CASES: list[tuple[str, list[dict[str, Any]], bool]] = [
    ("firehose-sse-cmk", [stream(serverSideEncryption=None)], True),
    ("firehose-sse-cmk", [stream(serverSideEncryption={"enabled": False})], True),
    ("firehose-sse-cmk", [stream(serverSideEncryption={"enabled": True, "keyType": "AWS_OWNED_CMK"})], True),
    ("firehose-sse-cmk", [stream()], False),
    ("athena-workgroup-enforced", [workgroup(enforceWorkgroupConfiguration=False)], True),
    ("athena-workgroup-enforced", [workgroup(resultConfiguration={"outputLocation": "s3://b/r/"})], True),
    ("athena-workgroup-enforced", [workgroup()], False),
    ("athena-scan-limit-advisory", [workgroup(bytesScannedCutoffPerQuery=None)], True),
    ("athena-scan-limit-advisory", [workgroup()], False),
]


@pytest.mark.parametrize(("policy", "resources", "violated"), CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_analytics_policy_case(policy: str, resources: list[dict[str, Any]], violated: bool) -> None:
    found = of(policy, *resources)
    assert bool(found) == violated, [v.message for v in found]


def test_every_analytics_policy_has_a_failing_and_a_passing_case() -> None:
    assert sorted(ANALYTICS_POLICIES) == ["athena-scan-limit-advisory", "athena-workgroup-enforced",
                                          "firehose-sse-cmk"]
    assert set(ANALYTICS_POLICIES) <= {p for p, _, v in CASES if v}
    assert set(ANALYTICS_POLICIES) <= {p for p, _, v in CASES if not v}


def test_messages_name_the_resource_and_the_remedy() -> None:
    (v,) = of("firehose-sse-cmk", stream(serverSideEncryption=None))
    assert v.level == "mandatory"
    assert v.message.startswith("FirehoseDeliveryStream 'events' keeps records unencrypted")
    assert "CUSTOMER_MANAGED_CMK" in v.message
    (v,) = of("athena-scan-limit-advisory", workgroup(bytesScannedCutoffPerQuery=None))
    assert v.level == "advisory" and "bytes_scanned_cutoff_per_query" in v.message


def _mutated(synth, resource_type: str, change) -> list[str]:
    document = copy.deepcopy(synth.to_json())
    for r in document["resources"]:
        if r["type"] == resource_type:
            change(r["inputs"])
    return [v.policy for v in evaluate(document) if v.level == "mandatory"]


def test_shipped_stacks_pass_and_weakened_they_are_caught(synths) -> None:
    for synth in synths.values():
        assert not [v for v in evaluate(synth.to_json()) if v.policy in ANALYTICS_POLICIES]
    prod = synths["prod"]
    assert _mutated(prod, FIREHOSE, lambda i: i.pop("serverSideEncryption")) == ["firehose-sse-cmk"]
    assert _mutated(prod, WORKGROUP, lambda i: i["configuration"].update(enforceWorkgroupConfiguration=False)) == [
        "athena-workgroup-enforced"]
