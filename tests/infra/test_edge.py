"""The edge on every shipped stack: CloudFront, its WAF, the VPC origin and the private ALB behind it."""

from __future__ import annotations

import re

import pytest

from infra.aws.edge import ALL_VIEWER_EXCEPT_HOST, CACHING_DISABLED, MIN_VIEWER_TLS
from infra.config.deployment import TEST_HEADER
from ops.synth import synth_stack

STACKS = ("dev", "staging", "prod")
MANAGED = {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
           "AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesSQLiRuleSet"}


@pytest.fixture(params=STACKS)
def stack(request, synths):
    return request.param, synths[request.param]


def distribution(s) -> dict:
    return s.one("aws:cloudfront/distribution:Distribution")["inputs"]


def test_distribution_speaks_http2_and_3_and_redirects_http(stack):
    _, s = stack
    d = distribution(s)
    assert d["httpVersion"] == "http2and3" and d["enabled"] is True
    behaviours = [d["defaultCacheBehavior"], *d["orderedCacheBehaviors"]]
    assert {b["viewerProtocolPolicy"] for b in behaviours} == {"redirect-to-https"}


def test_viewer_certificate_is_acm_with_tls12_where_the_stack_has_a_domain(stack, config_of):
    name, s = stack
    cert = distribution(s)["viewerCertificate"]
    domain = config_of(name).edge.domain or config_of(name).gateway.domain
    if domain:
        assert cert["minimumProtocolVersion"] == MIN_VIEWER_TLS and cert["sslSupportMethod"] == "sni-only"
        # us-east-1 stack, same name as the ALB's: the one validated certificate serves both.
        (issued,) = s.of_type("aws:acm/certificate:Certificate")
        assert issued["inputs"]["domainName"] == domain and issued["arn"].startswith("arn:aws:acm:us-east-1:")
        (validated,) = s.of_type("aws:acm/certificateValidation:CertificateValidation")
        assert cert["acmCertificateArn"] == validated["inputs"]["certificateArn"] == issued["arn"]
        assert distribution(s)["aliases"] == [domain]
        alias = s.one("aws:route53/record:Record", "edge-alias-a")["inputs"]
        assert alias["name"] == domain and alias["aliases"][0]["zoneId"] == "Z2FDTNDATAQYW2"
    else:
        assert cert == {"cloudfrontDefaultCertificate": True}
        assert "aliases" not in distribution(s)


def test_edge_waf_is_cloudfront_scope_in_us_east_1_with_the_rate_limit_and_managed_groups(stack, config_of):
    name, s = stack
    acls = s.of_type("aws:wafv2/webAcl:WebAcl")
    assert [a["inputs"]["scope"] for a in acls] == ["CLOUDFRONT"], "the regional web ACL is gone"
    acl = acls[0]
    assert acl["inputs"]["region"] == "us-east-1"
    rules = {r["name"]: r for r in acl["inputs"]["rules"]}
    assert MANAGED <= set(rules)
    limit = rules["rate-limit-per-ip"]["statement"]["rateBasedStatement"]
    assert limit["limit"] == config_of(name).edge.waf_rate_limit and limit["aggregateKeyType"] == "IP"
    assert distribution(s)["webAclId"] == acl["arn"] and ":global/webacl/" in acl["arn"]


def test_edge_waf_logs_redacted_to_an_encrypted_group_in_us_east_1(stack):
    _, s = stack
    logging = s.one("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")["inputs"]
    group = s.one("aws:cloudwatch/logGroup:LogGroup", "edge-waf-logs")["inputs"]
    assert group["name"].startswith("aws-waf-logs-") and group["region"] == "us-east-1"
    assert group["kmsKeyId"].startswith("arn:aws:kms:")
    assert logging["logDestinationConfigs"] == [f"arn:aws:logs:us-east-1:123456789012:log-group:{group['name']}"] or \
        logging["logDestinationConfigs"][0].endswith(group["name"])
    redacted = {f["singleHeader"]["name"] for f in logging["redactedFields"]}
    assert redacted == {"authorization", "cookie"}


def test_alb_is_internal_in_private_subnets_reached_only_through_the_vpc_origin(stack):
    _, s = stack
    alb = s.one("aws:lb/loadBalancer:LoadBalancer")
    assert alb["inputs"]["internal"] is True
    private = {r["id"] for r in s.of_type("aws:ec2/subnet:Subnet") if "private" in r["name"]}
    assert set(alb["inputs"]["subnets"]) <= private and alb["inputs"]["subnets"]
    origin = s.one("aws:cloudfront/vpcOrigin:VpcOrigin")["inputs"]["vpcOriginEndpointConfig"]
    assert origin["arn"] == alb["arn"]
    api = next(o for o in distribution(s)["origins"] if o["originId"] == "api")
    assert api["vpcOriginConfig"]["vpcOriginId"] == s.one("aws:cloudfront/vpcOrigin:VpcOrigin")["id"]


def test_alb_admits_only_cloudfront_origin_facing_on_the_origin_port(stack, config_of):
    name, s = stack
    sg = next(r for r in s.of_type("aws:ec2/securityGroup:SecurityGroup") if r["name"] == "gateway-alb-sg")
    ingress = [r["inputs"] for r in s.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
               if r["inputs"]["securityGroupId"] == sg["id"]]
    port = 443 if config_of(name).gateway.tls else 80
    assert [(r["prefixListId"], r["fromPort"], r["toPort"]) for r in ingress] == [("pl-3b927c52", port, port)]
    protocol = s.one("aws:cloudfront/vpcOrigin:VpcOrigin")["inputs"]["vpcOriginEndpointConfig"]["originProtocolPolicy"]
    assert protocol == ("https-only" if port == 443 else "http-only")


def test_nothing_in_the_stack_admits_the_whole_internet(stack):
    _, s = stack
    for rule in s.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        assert rule["inputs"].get("cidrIpv4") != "0.0.0.0/0", rule["name"]
        assert rule["inputs"].get("cidrIpv6") != "::/0", rule["name"]
    for sg in s.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in sg["inputs"].get("ingress", []):
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), sg["name"]


def test_cacheable_route_gets_a_ttl_capped_policy_keyed_on_the_query_string(stack, config_of):
    name, s = stack
    routes = [r for svc in config_of(name).services for r in svc.routes]
    by_path = {b["pathPattern"]: b for b in distribution(s)["orderedCacheBehaviors"]}
    health = [svc.health_check.path for svc in config_of(name).services]
    assert list(by_path) == list(dict.fromkeys([*(r.path for r in routes), *health]))
    assert all(by_path[p]["cachePolicyId"] == CACHING_DISABLED for p in health), "health paths never cached"
    policies = {p["id"]: p["inputs"] for p in s.of_type("aws:cloudfront/cachePolicy:CachePolicy")}
    for route in routes:
        b = by_path[route.path]
        assert b["targetOriginId"] == "api" and b["originRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST
        assert set(b["allowedMethods"]) >= {"POST", "PUT", "DELETE"} and b["cachedMethods"] == ["GET", "HEAD"]
        if route.cache_seconds:
            p = policies[b["cachePolicyId"]]
            assert p["maxTtl"] == p["defaultTtl"] == route.cache_seconds and p["minTtl"] == 0
            key = p["parametersInCacheKeyAndForwardedToOrigin"]
            assert key["queryStringsConfig"]["queryStringBehavior"] == ("all" if route.cache_query_string else "none")
            # Smoke traffic for a new revision carries the test header: never production's cached answer.
            # A route whose writes need a token also keys on Authorization, the only way it reaches the origin.
            bearer = ["Authorization"] if route.auth == "jwt" else []
            assert key["headersConfig"] == {"headerBehavior": "whitelist", "headers": {"items": [TEST_HEADER, *bearer]}}
            assert key["cookiesConfig"] == {"cookieBehavior": "none"}
        else:
            assert b["cachePolicyId"] == CACHING_DISABLED
    assert any(r.cache_seconds for r in routes), "the shipped stacks cache the public product reads"


def test_uncacheable_routes_pass_through_uncached(config_of):
    from ops.synth import run

    cfg = config_of("dev", services=[{**config_of("dev").services[0].model_dump(mode="json", exclude_defaults=True),
                                      "routes": [{"path": "/products*"}]}])
    s = run(cfg, "dev")
    behaviours = distribution(s)["orderedCacheBehaviors"]
    assert [b["pathPattern"] for b in behaviours] == ["/products*", cfg.services[0].health_check.path]
    assert {b["cachePolicyId"] for b in behaviours} == {CACHING_DISABLED}
    assert not s.of_type("aws:cloudfront/cachePolicy:CachePolicy")


def test_every_behaviour_sends_hsts_and_security_headers(stack):
    _, s = stack
    policy = s.one("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
    sec = policy["inputs"]["securityHeadersConfig"]
    assert sec["strictTransportSecurity"]["accessControlMaxAgeSec"] >= 31_536_000
    assert sec["strictTransportSecurity"]["includeSubdomains"] is True
    assert sec["frameOptions"]["frameOption"] == "DENY" and sec["contentTypeOptions"]["override"] is True
    d = distribution(s)
    assert {b["responseHeadersPolicyId"] for b in [d["defaultCacheBehavior"], *d["orderedCacheBehaviors"]]} == {policy["id"]}


def test_standard_logs_go_to_an_encrypted_group_in_us_east_1(stack):
    _, s = stack
    group = s.one("aws:cloudwatch/logGroup:LogGroup", "edge-access-logs")["inputs"]
    assert group["kmsKeyId"].startswith("arn:aws:kms:") and group["region"] == "us-east-1"
    source = s.one("aws:cloudwatch/logDeliverySource:LogDeliverySource")["inputs"]
    assert source["logType"] == "ACCESS_LOGS" and source["resourceArn"].startswith("arn:aws:cloudfront::")
    dest = s.one("aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination")["inputs"]
    assert dest["deliveryDestinationConfiguration"]["destinationResourceArn"].endswith(group["name"])
    delivery = s.one("aws:cloudwatch/logDelivery:LogDelivery")["inputs"]
    assert delivery["deliverySourceName"] == source["name"]


def test_smoke_and_gateway_urls_go_through_the_edge(stack):
    _, s = stack
    assert s.outputs["gateway_url"] == s.outputs["edge_url"]
    assert s.outputs["gateway_url"].startswith("https://")
    assert "elb.amazonaws.com" not in s.outputs["gateway_url"]


def test_a_stack_outside_us_east_1_keeps_edge_logs_in_us_east_1_with_a_key_there(config_of):
    from ops.synth import run

    cfg = config_of("dev")
    cfg = cfg.model_copy(update={"region": "eu-west-1"})
    s = run(cfg, "dev")
    key = s.one("aws:kms/key:Key", "edge-log-key")["inputs"]
    assert key["region"] == "us-east-1"
    group = s.one("aws:cloudwatch/logGroup:LogGroup", "edge-waf-logs")["inputs"]
    assert group["kmsKeyId"] == s.one("aws:kms/key:Key", "edge-log-key")["arn"]


@pytest.mark.parametrize(("section", "value", "message"), [
    ("edge", {"certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc"},
     "CloudFront takes certificates from us-east-1 only"),
    ("edge", {"domain": "www.example.com"}, "needs edge.certificate_arn (us-east-1) or gateway.hosted_zone_id"),
    ("gateway", {"waf": True, "deletion_protection": False}, "a regional one needs waf_reason"),
])
def test_edge_schema_refuses_with_a_clear_message(config_of, section, value, message):
    from infra.config import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        config_of("dev", **{section: value})


def test_regional_waf_with_a_reason_is_kept_beside_the_edge_one(config_of):
    from ops.synth import run

    cfg = config_of("dev", gateway={"waf": True, "waf_reason": "a partner reaches the ALB over PrivateLink",
                                    "deletion_protection": False})
    scopes = sorted(a["inputs"]["scope"] for a in run(cfg, "dev").of_type("aws:wafv2/webAcl:WebAcl"))
    assert scopes == ["CLOUDFRONT", "REGIONAL"]


def test_synth_is_deterministic_with_the_edge():
    a, b = synth_stack("dev"), synth_stack("dev")
    assert a.to_json() == b.to_json()


# Where auth: jwt can be enforced (and why a cached route may have it): tests/config/test_auth_config.py.


def test_a_stack_outside_us_east_1_gets_a_viewer_certificate_issued_in_us_east_1(config_of):
    from ops.synth import run

    cfg = config_of("prod")
    s = run(cfg.model_copy(update={"region": "eu-west-1"}), "prod")
    edge_cert = s.one("aws:acm/certificate:Certificate", "edge-cert")
    assert edge_cert["inputs"]["region"] == "us-east-1" and edge_cert["inputs"]["domainName"] == "api.example.com"
    validated = s.one("aws:acm/certificateValidation:CertificateValidation", "edge-cert-validated")["inputs"]
    assert validated["region"] == "us-east-1"
    viewer = distribution(s)["viewerCertificate"]
    assert viewer["acmCertificateArn"] == validated["certificateArn"]
    assert s.one("aws:acm/certificate:Certificate", "gateway-cert")["inputs"].get("region") is None, "the ALB's stays home"


def test_a_kept_regional_waf_describes_its_reason_in_characters_waf_accepts(config_of):
    import re as _re

    from ops.synth import run

    cfg = config_of("dev", gateway={"waf": True, "waf_reason": "partner's PrivateLink (no CloudFront)!",
                                    "deletion_protection": False})
    (regional,) = [a for a in run(cfg, "dev").of_type("aws:wafv2/webAcl:WebAcl") if a["inputs"]["scope"] == "REGIONAL"]
    description = regional["inputs"]["description"]
    assert _re.fullmatch(r"[\w+=:#@/\-,. ]+", description) and "PrivateLink" in description
