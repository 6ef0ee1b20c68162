"""The edge: no internet-facing ALB, CloudFront with WAF and TLS 1.2+, the client bucket behind OAC,
and a word on routes that let writes through without a token."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policy_support import (
    ADVISORY,
    LISTENER_RULES,
    LOAD_BALANCERS,
    MANDATORY,
    Finding,
    Stack,
    environment_of,
    get,
    guarded,
    internet_facing_alb,
    items,
    resource_policy,
    stack_policy,
    tags_of,
)
from pulumi_policy import PolicyResource, ResourceValidationArgs

DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
# The tag a stack sets on an ALB it deliberately leaves internet-facing, saying why.
INTERNET_FACING_REASON = "internet-facing-reason"
TLS12_VIEWER_POLICIES = ("TLSv1.2_2018", "TLSv1.2_2019", "TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The tag the program puts on a listener rule whose service checks bearer tokens itself
# (`auth_enforced_by: service`; infra/aws/listener_rules.py AUTH_ENFORCED_BY_TAG).
AUTH_ENFORCED_BY = "auth-enforced-by"


def _alb_internal(stack: Stack) -> Iterator[Finding]:
    def check(lb: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        if internet_facing_alb(props) and not str(tags_of(props).get(INTERNET_FACING_REASON) or "").strip():
            yield Finding(f"Load balancer '{lb.name}' is internet-facing: it bypasses the edge's WAF, cache and "
                          f"TLS. Make it internal behind the CloudFront VPC origin, or tag it "
                          f"'{INTERNET_FACING_REASON}' with the reason it must stay public.",
                          lb.urn, environment_of(props))

    yield from guarded(check, stack.known(*LOAD_BALANCERS))


def _distribution_waf(args: ResourceValidationArgs) -> Iterator[str]:
    if not args.props.get("webAclId"):
        yield (f"{label_of(args)} has no WAF web ACL: requests reach the origin unfiltered. "
               "Attach a CLOUDFRONT-scope web ACL (infra/aws/edge.py does) with web_acl_id.")


def _distribution_tls(args: ResourceValidationArgs) -> Iterator[str]:
    props = args.props
    cert = props.get("viewerCertificate") or {}
    custom = get(cert, "acmCertificateArn") or get(cert, "iamCertificateId")
    if custom and get(cert, "minimumProtocolVersion") not in TLS12_VIEWER_POLICIES:
        yield (f"{label_of(args)} lets viewers negotiate {get(cert, 'minimumProtocolVersion') or 'TLSv1'}, "
               f"below TLS 1.2. Set minimum_protocol_version to TLSv1.2_2021.")
    behaviours = [props.get("defaultCacheBehavior"), *items(props.get("orderedCacheBehaviors"))]
    plain = [get(b, "pathPattern") or "default" for b in behaviours if get(b, "viewerProtocolPolicy") == "allow-all"]
    if plain:
        yield (f"{label_of(args)} serves plain HTTP on {', '.join(plain)}. "
               "Set viewer_protocol_policy to redirect-to-https.")


def _default_certificate(args: ResourceValidationArgs) -> Iterator[str]:
    cert = args.props.get("viewerCertificate") or {}
    if get(cert, "cloudfrontDefaultCertificate") is True:
        yield (f"{label_of(args)} uses the *.cloudfront.net certificate, whose security policy AWS fixes at "
               "TLSv1. Set edge.domain (or gateway.domain) so the edge gets its own certificate and TLS 1.2+.")


def _client_bucket_oac(args: ResourceValidationArgs) -> Iterator[str]:
    for origin in items(args.props.get("origins")):
        domain = str(get(origin, "domainName") or "")
        if ".s3." in domain or domain.endswith(".s3.amazonaws.com"):
            if get(origin, "s3OriginConfig", "originAccessIdentity"):
                yield (f"{label_of(args)} reads bucket origin '{get(origin, 'originId')}' through a legacy origin "
                       "access identity. Use an origin access control (SigV4) instead.")
            elif not get(origin, "originAccessControlId"):
                yield (f"{label_of(args)} reads bucket origin '{get(origin, 'originId')}' without origin access "
                       "control: the bucket would have to be public. Set origin_access_control_id.")


def _unauthenticated_writes(stack: Stack) -> Iterator[Finding]:
    def check(rule: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        actions = items(props.get("actions"))
        if not any(get(a, "type") == "forward" for a in actions):
            return
        if any(get(a, "type") == "jwt-validation" for a in actions):
            return
        if str(tags_of(props).get(AUTH_ENFORCED_BY) or "") == "service":
            return  # the stack config says the service behind it verifies the token
        methods: set[str] = set()
        for condition in items(props.get("conditions")):
            methods |= {str(m).upper() for m in items(get(condition, "httpRequestMethod", "values"))}
        if methods and methods <= READ_METHODS:
            return
        paths = [p for c in items(props.get("conditions")) for p in items(get(c, "pathPattern", "values"))]
        yield Finding(f"Listener rule '{rule.name}' ({', '.join(paths) or 'any path'}) forwards write methods "
                      f"without a token check. Give the route auth: jwt (auth_enforced_by alb puts a "
                      f"jwt-validation action before the forward, service has the service verify it; "
                      f"docs/edge.md, Authentication), or restrict the rule to GET/HEAD if it is public.",
                      rule.urn, environment_of(props))

    yield from guarded(check, stack.known(*LISTENER_RULES))


def label_of(args: ResourceValidationArgs) -> str:
    return f"Distribution '{args.name}'"


POLICIES = [
    stack_policy("alb-internal",
                 "Load balancers are internal behind the edge, unless tagged with the reason they are public.",
                 MANDATORY, _alb_internal),
    resource_policy("edge-waf", "Every CloudFront distribution has a WAF web ACL.", MANDATORY, [DISTRIBUTION],
                    _distribution_waf),
    resource_policy("edge-tls12", "CloudFront distributions redirect HTTP and accept TLS 1.2+ with their own "
                    "certificate.", MANDATORY, [DISTRIBUTION], _distribution_tls),
    resource_policy("edge-default-certificate-advisory",
                    "A distribution on the *.cloudfront.net certificate cannot refuse TLS below 1.2.",
                    ADVISORY, [DISTRIBUTION], _default_certificate),
    resource_policy("edge-bucket-oac", "Bucket origins are read through origin access control, never publicly.",
                    MANDATORY, [DISTRIBUTION], _client_bucket_oac),
    stack_policy("route-write-auth-advisory",
                 "Routes that accept write methods check a token, at the ALB or in the service (auth: jwt).",
                 ADVISORY, _unauthenticated_writes),
]
