"""The gateway layer alone (the internal ALB behind the edge), with stand-in subnets, one synth per TLS mode."""

from __future__ import annotations

import json

import pulumi
import pytest

from infra.aws.gateway import SSL_POLICY, Gateway, GatewayArgs
from infra.config import StackConfig, parse
from infra.tags import base_tags
from ops import stackfile
from ops.synth import Synth, run

ORIGIN_FACING = "pl-3b927c52"  # the mocks' id of com.amazonaws.global.cloudfront.origin-facing
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
SUBNETS = ["subnet-0private0a", "subnet-0private0b"]
KEY = "arn:aws:kms:us-east-1:123456789012:key/0standin-data-key"
MANAGED = {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
           "AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesSQLiRuleSet"}

# Mode -> (stack file, gateway section override or None to keep the file's).
CASES: dict[str, tuple[str, dict | None]] = {
    "plain": ("dev", None),  # no TLS, no regional WAF, access logs, no deletion protection
    "issued": ("prod", None),  # domain + zone: ACM certificate, deletion protection
    # A regional WAF kept beside the edge's, with its reason.
    "imported": ("dev", {"certificate_arn": CERT, "access_logs": False, "waf": True, "waf_rate_limit": 500,
                         "waf_reason": "a partner reaches the ALB over PrivateLink", "deletion_protection": False}),
}


def config(stack: str, **sections: object) -> StackConfig:
    values = stackfile.read_values(stack)
    values.update({f"refarch:{key}": value for key, value in sections.items()})
    return parse(values, stack, f"stacks/Pulumi.{stack}.yaml")


def synth_gateway(cfg: StackConfig, stack: str) -> Synth:
    def build(c: StackConfig) -> None:
        gw = Gateway("gateway", GatewayArgs(
            config=c.gateway,
            name_prefix=f"refarch-{stack}",
            vpc_id=pulumi.Output.from_input("vpc-0standin"),
            subnet_ids=[pulumi.Output.from_input(s) for s in SUBNETS],
            kms_key_arn=pulumi.Output.from_input(KEY),
            audit_log_retention_days=c.monitoring.audit_log_retention_days,
            tags=base_tags("refarch", stack, c.environment),
        ))
        for attr in ("security_group_id", "listener_arn", "load_balancer_arn", "arn_suffix", "dns_name",
                     "url", "web_acl_arn"):
            pulumi.export(attr, getattr(gw, attr))

    return run(cfg, stack, build=build)


@pytest.fixture(scope="module")
def gateways() -> dict[str, tuple[StackConfig, Synth]]:
    out: dict[str, tuple[StackConfig, Synth]] = {}
    for mode, (stack, gateway) in CASES.items():
        cfg = config(stack) if gateway is None else config(stack, gateway=gateway)
        out[mode] = (cfg, synth_gateway(cfg, stack))
    return out


@pytest.fixture(params=list(CASES))
def case(request, gateways) -> tuple[StackConfig, Synth]:
    return gateways[request.param]


def alb(s: Synth) -> dict:
    return s.one("aws:lb/loadBalancer:LoadBalancer")


def listeners(s: Synth) -> dict[int, dict]:
    return {r["inputs"]["port"]: r for r in s.of_type("aws:lb/listener:Listener")}


def test_alb_security_group_admits_only_cloudfront_on_the_origin_port_and_has_no_egress(case):
    cfg, s = case
    (sg,) = s.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert "ingress" not in sg["inputs"] and "egress" not in sg["inputs"], "no inline rules"
    assert sg["inputs"]["vpcId"] == "vpc-0standin"
    rules = [r["inputs"] for r in s.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]
    port = 443 if cfg.gateway.tls else 80
    # One rule: the origin-facing prefix list weighs 55 of the group's 60 rules.
    assert [(r["fromPort"], r["toPort"], r["ipProtocol"], r["prefixListId"]) for r in rules] == [
        (port, port, "tcp", ORIGIN_FACING)]
    assert all("cidrIpv4" not in r and "cidrIpv6" not in r for r in rules)
    assert all(r["securityGroupId"] == sg["id"] for r in rules)
    assert s.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") == []
    assert alb(s)["inputs"]["securityGroups"] == [sg["id"]] == [s.outputs["security_group_id"]]


def test_alb_is_internal_hardened_and_deletion_protection_follows_config(case):
    cfg, s = case
    lb = alb(s)
    i = lb["inputs"]
    assert i["name"] == f"refarch-{s.stack}-alb"
    assert (i["loadBalancerType"], i["internal"]) == ("application", True)
    assert i["subnets"] == SUBNETS
    assert i["dropInvalidHeaderFields"] is True
    assert i["enableDeletionProtection"] is cfg.gateway.deletion_protection
    assert i["idleTimeout"] == cfg.gateway.idle_timeout
    assert (s.outputs["load_balancer_arn"], s.outputs["arn_suffix"]) == (lb["arn"], lb["arn"].split("loadbalancer/")[1])


def test_deletion_protection_differs_between_the_shipped_stacks(gateways):
    assert alb(gateways["plain"][1])["inputs"]["enableDeletionProtection"] is False
    assert alb(gateways["issued"][1])["inputs"]["enableDeletionProtection"] is True


@pytest.mark.parametrize("mode", ["issued", "imported"])
def test_tls_terminates_on_https_with_a_modern_policy_and_no_plain_listener(gateways, mode):
    cfg, s = gateways[mode]
    by_port = listeners(s)
    assert set(by_port) == {443}, "CloudFront reaches the origin on HTTPS only"
    https = by_port[443]["inputs"]
    assert https["protocol"] == "HTTPS" and https["sslPolicy"] == SSL_POLICY == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["defaultActions"] == [{"type": "fixed-response", "fixedResponse": {
        "contentType": "text/plain", "messageBody": "Not Found", "statusCode": "404"}}]
    assert s.outputs["listener_arn"] == by_port[443]["arn"], "services attach to the HTTPS listener"
    if mode == "imported":
        assert https["certificateArn"] == CERT
        assert s.of_type("aws:acm/certificate:Certificate") == []
    else:
        (validated,) = s.of_type("aws:acm/certificateValidation:CertificateValidation")
        assert https["certificateArn"] == validated["inputs"]["certificateArn"], "listener waits for validation"


def test_without_tls_the_http_listener_answers_404_itself(gateways):
    _, s = gateways["plain"]
    (http,) = s.of_type("aws:lb/listener:Listener")
    assert (http["inputs"]["port"], http["inputs"]["protocol"]) == (80, "HTTP")
    assert "certificateArn" not in http["inputs"] and "sslPolicy" not in http["inputs"]
    assert http["inputs"]["defaultActions"][0]["fixedResponse"]["statusCode"] == "404"
    assert s.outputs["listener_arn"] == http["arn"]


def test_issued_certificate_is_dns_validated_in_the_zone_and_no_record_names_the_alb(gateways):
    cfg, s = gateways["issued"]
    zone, domain = cfg.gateway.hosted_zone_id, cfg.gateway.domain
    (cert,) = s.of_type("aws:acm/certificate:Certificate")
    assert cert["inputs"]["domainName"] == domain and cert["inputs"]["validationMethod"] == "DNS"
    records = {r["inputs"]["type"]: r["inputs"] for r in s.of_type("aws:route53/record:Record")}
    assert set(records) == {"CNAME"}, "the domain names the CloudFront distribution (infra/aws/edge.py)"
    cname = records["CNAME"]
    assert cname["zoneId"] == zone and cname["name"].endswith(f".{domain}.")
    assert cname["records"][0].endswith(".acm-validations.aws.")
    (validated,) = s.of_type("aws:acm/certificateValidation:CertificateValidation")
    assert validated["inputs"]["certificateArn"] == cert["arn"]
    assert validated["inputs"]["validationRecordFqdns"] == [cname["name"].rstrip(".")]


def test_an_imported_certificate_without_a_zone_creates_no_dns(gateways):
    _, s = gateways["imported"]
    assert s.of_type("aws:route53/record:Record") == []


def test_url_follows_the_tls_mode(gateways):
    plain, issued, imported = (gateways[m][1] for m in ("plain", "issued", "imported"))
    assert plain.outputs["url"] == f"http://{plain.outputs['dns_name']}"
    assert plain.outputs["dns_name"].endswith(".elb.amazonaws.com")
    assert imported.outputs["url"] == f"https://{imported.outputs['dns_name']}"
    # The ALB's own internal address (the in-VPC smoke hook's); viewers use the edge's URL.
    assert issued.outputs["url"] == f"https://{issued.outputs['dns_name']}"


@pytest.mark.parametrize("mode", ["imported"])
def test_waf_has_managed_groups_and_a_rate_limit_and_guards_the_alb(gateways, mode):
    cfg, s = gateways[mode]
    (acl,) = s.of_type("aws:wafv2/webAcl:WebAcl")
    i = acl["inputs"]
    assert i["scope"] == "REGIONAL" and i["defaultAction"] == {"allow": {}}
    visibilities = [i["visibilityConfig"]] + [rule["visibilityConfig"] for rule in i["rules"]]
    assert all(v["cloudwatchMetricsEnabled"] and v["sampledRequestsEnabled"] for v in visibilities)
    managed = {r["statement"]["managedRuleGroupStatement"]["name"]: r for r in i["rules"]
               if "managedRuleGroupStatement" in r["statement"]}
    assert set(managed) == MANAGED
    assert all(r["statement"]["managedRuleGroupStatement"]["vendorName"] == "AWS" for r in managed.values())
    assert all(r["overrideAction"] == {"none": {}} for r in managed.values()), "groups block, not just count"
    (rate,) = [r for r in i["rules"] if "rateBasedStatement" in r["statement"]]
    assert rate["statement"]["rateBasedStatement"]["limit"] == cfg.gateway.waf_rate_limit
    assert rate["statement"]["rateBasedStatement"]["aggregateKeyType"] == "IP"
    assert rate["action"] == {"block": {}}
    assert len({r["priority"] for r in i["rules"]}) == len(i["rules"]) == 5
    (assoc,) = s.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")
    assert assoc["inputs"] == {"resourceArn": alb(s)["arn"], "webAclArn": acl["arn"]}
    assert s.outputs["web_acl_arn"] == acl["arn"]


@pytest.mark.parametrize("mode", ["imported"])
def test_waf_logs_to_an_encrypted_audit_log_group_without_credentials(gateways, mode):
    cfg, s = gateways[mode]
    (acl,) = s.of_type("aws:wafv2/webAcl:WebAcl")
    (group,) = s.of_type("aws:cloudwatch/logGroup:LogGroup")
    g = group["inputs"]
    # WAF delivers only to log groups whose name starts with aws-waf-logs-.
    assert g["name"] == f"aws-waf-logs-refarch-{s.stack}"
    assert g["kmsKeyId"] == KEY and g["retentionInDays"] == cfg.monitoring.audit_log_retention_days
    (logging,) = s.of_type("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    assert logging["inputs"]["resourceArn"] == acl["arn"]
    assert logging["inputs"]["logDestinationConfigs"] == [group["arn"]]
    assert logging["inputs"]["redactedFields"] == [{"singleHeader": {"name": "authorization"}},
                                                   {"singleHeader": {"name": "cookie"}}]


@pytest.mark.parametrize("mode", ["plain", "issued"])
def test_no_regional_waf_unless_a_stack_keeps_one_with_a_reason(gateways, mode):
    _, s = gateways[mode]
    assert s.of_type("aws:wafv2/webAcl:WebAcl") == []
    assert s.of_type("aws:wafv2/webAclAssociation:WebAclAssociation") == []
    assert s.outputs.get("web_acl_arn") is None
    assert s.of_type("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration") == []


@pytest.mark.parametrize("mode", ["plain", "issued"])
def test_access_log_bucket_is_private_encrypted_expiring_and_tls_only(gateways, mode):
    cfg, s = gateways[mode]
    (bucket,) = s.of_type("aws:s3/bucket:Bucket")
    name = bucket["inputs"]["bucket"]
    assert name.startswith(f"refarch-{s.stack}-alb-logs-")
    assert bucket["inputs"]["forceDestroy"] is (not cfg.gateway.deletion_protection)

    def attached(typ: str) -> dict:
        (r,) = s.of_type(typ)
        assert r["inputs"]["bucket"] == bucket["id"]
        return r["inputs"]

    block = attached("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    sse = attached("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    days = cfg.monitoring.audit_log_retention_days
    (rule,) = attached("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"]
    assert rule["status"] == "Enabled" and rule["expiration"]["days"] == days
    # Versioned: a deleted or overwritten log stays recoverable for a month, and expiry's own
    # noncurrent versions do not double the storage.
    assert attached("aws:s3/bucketVersioning:BucketVersioning")["versioningConfiguration"] == {"status": "Enabled"}
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    versioning = s.one("aws:s3/bucketVersioning:BucketVersioning")["urn"]
    assert versioning in s.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")[
        "options"]["dependsOn"]
    assert attached("aws:s3/bucketOwnershipControls:BucketOwnershipControls")["rule"] == {"objectOwnership": "BucketOwnerEnforced"}

    statements = json.loads(attached("aws:s3/bucketPolicy:BucketPolicy")["policy"])["Statement"]
    arn = f"arn:aws:s3:::{name}"
    deny = [st for st in statements if st["Effect"] == "Deny"]
    assert deny == [{"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                     "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]
    allows = [st for st in statements if st["Effect"] == "Allow"]
    assert {json.dumps(st["Principal"], sort_keys=True) for st in allows} == {
        '{"AWS": "arn:aws:iam::127311923021:root"}',
        '{"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}',
    }
    assert all(st["Action"] == "s3:PutObject" and st["Resource"] == f"{arn}/AWSLogs/123456789012/*" for st in allows)

    lb = alb(s)
    assert lb["inputs"]["accessLogs"] == {"bucket": name, "enabled": True}
    policy_urn = s.one("aws:s3/bucketPolicy:BucketPolicy")["urn"]
    assert policy_urn in lb["options"]["dependsOn"], "ELB test-writes the bucket when logging is enabled"


def test_no_access_log_bucket_when_the_config_turns_logs_off(gateways):
    _, s = gateways["imported"]
    assert s.of_type("aws:s3/bucket:Bucket") == []
    assert "accessLogs" not in alb(s)["inputs"]


def test_every_taggable_resource_is_named_and_tagged(case):
    from ops.mocks import has_property

    _, s = case
    for r in s.resources:
        if has_property(r["type"], "tags"):
            tags = r["inputs"].get("tags", {})
            assert tags.get("stack") == s.stack and tags.get("Name"), r["name"]
