"""The edge policies: a failing and a passing case each, and the shipped stacks weakened."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ops.policy_run import evaluate, load_policies
from tests.policy.test_policies import LB, LB_ARN, PROD_TAGS, TAGS, alb, of, res

EDGE_POLICIES = [p.name for p in load_policies().POLICIES if p.name.startswith(("edge-", "alb-internal",
                                                                                 "route-write-auth"))]
DIST = "aws:cloudfront/distribution:Distribution"
RULE = "aws:lb/listenerRule:ListenerRule"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/x"
BEHAVIOUR = {"targetOriginId": "api", "viewerProtocolPolicy": "redirect-to-https"}
S3_DOMAIN = "refarch-dev-web-123456789012-us-east-1.s3.us-east-1.amazonaws.com"


def distribution(**overrides: Any) -> dict[str, Any]:
    inputs = {"webAclId": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/1",
              "viewerCertificate": {"acmCertificateArn": CERT, "sslSupportMethod": "sni-only",
                                    "minimumProtocolVersion": "TLSv1.2_2021"},
              "defaultCacheBehavior": BEHAVIOUR, "origins": [{"originId": "api", "domainName": "alb.internal"}],
              "tags": TAGS, **overrides}
    return res(DIST, "edge", arn="arn:aws:cloudfront::123456789012:distribution/E1", **inputs)


def rule(actions: list[dict[str, Any]], methods: list[str] | None = None, tags: dict[str, str] | None = None,
         ) -> dict[str, Any]:
    conditions = [{"pathPattern": {"values": ["/products*"]}}]
    if methods:
        conditions.append({"httpRequestMethod": {"values": methods}})
    return res(RULE, "products-rule", listenerArn=f"{LB_ARN}/https", priority=1, actions=actions,
               conditions=conditions, tags={**TAGS, **(tags or {})})


FORWARD = {"type": "forward", "targetGroupArn": "tg"}
JWT = {"type": "jwt-validation", "order": 1, "jwtValidation": {"issuer": "https://issuer", "jwksEndpoint": "https://issuer/jwks"}}

CASES: list[tuple[str, list[dict[str, Any]], bool]] = [
    ("alb-internal", [alb(PROD_TAGS)], True),
    ("alb-internal", [alb(PROD_TAGS, internal=True)], False),
    ("alb-internal", [alb({**PROD_TAGS, "internet-facing-reason": "a partner without CloudFront"})], False),
    ("alb-internal", [alb({**PROD_TAGS, "internet-facing-reason": " "})], True),
    ("edge-waf", [distribution(webAclId=None)], True),
    ("edge-waf", [distribution()], False),
    ("edge-tls12", [distribution(viewerCertificate={"acmCertificateArn": CERT, "minimumProtocolVersion": "TLSv1.1_2016"})], True),
    ("edge-tls12", [distribution(defaultCacheBehavior={**BEHAVIOUR, "viewerProtocolPolicy": "allow-all"})], True),
    ("edge-tls12", [distribution()], False),
    ("edge-default-certificate-advisory", [distribution(viewerCertificate={"cloudfrontDefaultCertificate": True})], True),
    ("edge-default-certificate-advisory", [distribution()], False),
    ("edge-bucket-oac", [distribution(origins=[{"originId": "web", "domainName": S3_DOMAIN}])], True),
    ("edge-bucket-oac", [distribution(origins=[{"originId": "web", "domainName": S3_DOMAIN,
                                                "s3OriginConfig": {"originAccessIdentity": "origin-access-identity/cloudfront/E1"}}])], True),
    ("edge-bucket-oac", [distribution(origins=[{"originId": "web", "domainName": S3_DOMAIN,
                                                "originAccessControlId": "oac-1"}])], False),
    ("route-write-auth-advisory", [rule([FORWARD])], True),
    ("route-write-auth-advisory", [rule([FORWARD], ["POST", "GET"])], True),
    ("route-write-auth-advisory", [rule([FORWARD], ["GET", "HEAD"])], False),
    ("route-write-auth-advisory", [rule([JWT, {**FORWARD, "order": 2}])], False),
    # The program's marker for auth_enforced_by: service; any other value is no promise.
    ("route-write-auth-advisory", [rule([FORWARD], tags={"auth-enforced-by": "service"})], False),
    ("route-write-auth-advisory", [rule([FORWARD], tags={"auth-enforced-by": "someone"})], True),
]


@pytest.mark.parametrize(("policy", "resources", "violated"), CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_edge_policy_case(policy: str, resources: list[dict[str, Any]], violated: bool) -> None:
    found = of(policy, *resources)
    assert bool(found) == violated, [v.message for v in found]


def test_every_edge_policy_has_a_failing_and_a_passing_case() -> None:
    assert len(EDGE_POLICIES) == 6
    assert set(EDGE_POLICIES) <= {p for p, _, v in CASES if v}
    assert set(EDGE_POLICIES) <= {p for p, _, v in CASES if not v}


def test_advisories_are_advisory_and_the_rest_mandatory() -> None:
    levels = {v.policy: v.level for p, resources, violated in CASES if violated for v in of(p, *resources)}
    assert {p for p, lvl in levels.items() if lvl == "advisory"} == {"edge-default-certificate-advisory",
                                                                     "route-write-auth-advisory"}


def _mutated(synth, resource_type: str, change) -> list[str]:
    document = copy.deepcopy(synth.to_json())
    for r in document["resources"]:
        if r["type"] == resource_type:
            change(r["inputs"])
    return [v.policy for v in evaluate(document) if v.level == "mandatory"]


def test_shipped_stacks_turned_public_or_unguarded_are_caught(synths) -> None:
    prod = synths["prod"]
    # A public ALB is also one without a WAF of its own: the gateway policy says so too.
    assert _mutated(prod, LB, lambda i: i.update(internal=False)) == ["alb-internal", "alb-waf"]
    assert _mutated(prod, DIST, lambda i: i.pop("webAclId")) == ["edge-waf"]
    assert _mutated(prod, DIST, lambda i: i["viewerCertificate"].update(minimumProtocolVersion="TLSv1")) == ["edge-tls12"]
    assert _mutated(synths["dev"], DIST, lambda i: [o.pop("originAccessControlId", None) for o in i["origins"]]) == [
        "edge-bucket-oac"]


def test_the_write_auth_advisory_follows_the_stack_config(synths) -> None:
    import sys

    from infra.aws.listener_rules import AUTH_ENFORCED_BY_TAG

    load_policies()  # puts the pack's modules (not a package) in sys.modules
    assert sys.modules["edge_policies"].AUTH_ENFORCED_BY == AUTH_ENFORCED_BY_TAG
    fired = {stack: [v.name for v in evaluate(synths[stack].to_json()) if v.policy == "route-write-auth-advisory"]
             for stack in ("dev", "staging", "prod")}
    # staging and prod: the service checks tokens on writes; dev's writes are open, and said so.
    assert fired["staging"] == [] and fired["prod"] == []
    assert fired["dev"] == ["services-products-rule-0"]
    # Without the marker, the same prod rules are open writes again.
    document = copy.deepcopy(synths["prod"].to_json())
    for r in document["resources"]:
        if r["type"] == RULE:
            r["inputs"]["tags"].pop("auth-enforced-by", None)
    assert {v.name for v in evaluate(document) if v.policy == "route-write-auth-advisory"} == {
        "services-products-rule-0", "services-products-rule-test"}


def advisory_findings(synth) -> list[str | None]:
    """The write-auth advisory's findings on a synth (tests/infra/test_auth.py uses it too)."""
    return [v.name for v in evaluate(synth.to_json()) if v.policy == "route-write-auth-advisory"]
