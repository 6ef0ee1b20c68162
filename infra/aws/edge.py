"""The edge: a CloudFront distribution in front of the internal ALB (VPC origin) and the web client.

TLS ends at CloudFront (the default *.cloudfront.net certificate without a domain, an ACM one from
us-east-1 with one), the edge web ACL filters every request, API routes get a cache behaviour each
from the gateway config, and standard logs go to a KMS-encrypted log group.

CloudFront's WAF, certificates and log delivery live in us-east-1 whatever the stack's region:
pulumi_aws 7 takes a `region` argument per resource, so those resources name it instead of needing a
second provider (it shows in the synth, and a test checks it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.gateway import Gateway
from infra.aws.waf import visibility, waf_logging, waf_rules
from infra.aws.web_client import WebClient
from infra.config import StackConfig
from infra.config.deployment import TEST_HEADER
from infra.config.edge import EDGE_REGION, viewer_domain
from infra.tags import with_name

# AWS-managed policies (CloudFront Developer Guide, "Use managed cache policies" and "Use managed
# origin request policies"): fixed ids, the same in every account.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
# Route 53's alias zone for every CloudFront distribution.
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"
MIN_VIEWER_TLS = "TLSv1.2_2021"
ALL_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
CACHED_METHODS = ["GET", "HEAD"]
HSTS_SECONDS = 63_072_000  # two years, the preload list's minimum is one
API_ORIGIN, WEB_ORIGIN = "api", "web"
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@dataclass
class EdgeArgs:
    config: StackConfig
    name_prefix: str
    gateway: Gateway
    web_client: WebClient | None
    # The stack's key, used for the edge's log groups when the stack itself is in us-east-1.
    kms_key_arn: pulumi.Input[str]
    audit_log_retention_days: int
    tags: dict[str, str]


class Edge(pulumi.ComponentResource):
    url: pulumi.Output[str]
    distribution_id: pulumi.Output[str]
    distribution_arn: pulumi.Output[str]
    web_acl_arn: pulumi.Output[str]

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:edge:Edge", name, None, opts)
        self._base, self._args = name, args
        cfg, prefix, gateway = args.config, args.name_prefix, args.gateway
        child = pulumi.ResourceOptions(parent=self)
        domain = viewer_domain(cfg)
        key = self._log_key()

        acl = aws.wafv2.WebAcl(
            f"{name}-waf",
            name=f"{prefix}-edge-acl",
            description=f"{prefix}: managed rule groups and a per-IP rate limit at the edge",
            scope="CLOUDFRONT",
            region=EDGE_REGION,
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=waf_rules(f"{prefix}-edge", cfg.edge.waf_rate_limit),
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(**visibility(f"{prefix}-edge-acl")),
            tags=self._tags(f"{prefix}-edge-acl"),
            opts=child,
        )
        waf_logging(self, name, acl, group_name=f"aws-waf-logs-{prefix}-edge", kms_key_arn=key,
                    retention_days=args.audit_log_retention_days, tags=self._tags(f"aws-waf-logs-{prefix}-edge"),
                    region=EDGE_REGION)

        # HTTP inside the VPC unless the ALB has a certificate (then HTTPS, checked against its domain).
        vpc_origin = aws.cloudfront.VpcOrigin(
            f"{name}-vpc-origin",
            vpc_origin_endpoint_config=aws.cloudfront.VpcOriginVpcOriginEndpointConfigArgs(
                name=f"{prefix}-alb",
                arn=gateway.load_balancer_arn,
                http_port=80,
                https_port=443,
                origin_protocol_policy=gateway.origin_protocol,
                origin_ssl_protocols=aws.cloudfront.VpcOriginVpcOriginEndpointConfigOriginSslProtocolsArgs(
                    items=["TLSv1.2"], quantity=1),
            ),
            tags=self._tags(f"{prefix}-alb-origin"),
            opts=child,
        )
        # With TLS to the origin CloudFront must ask for a name the ALB's certificate holds.
        origin_domain: pulumi.Input[str] = (cfg.gateway.domain if cfg.gateway.tls and cfg.gateway.domain
                                            else gateway.dns_name)
        headers = self._response_headers()
        origins = [aws.cloudfront.DistributionOriginArgs(
            origin_id=API_ORIGIN,
            domain_name=origin_domain,
            vpc_origin_config=aws.cloudfront.DistributionOriginVpcOriginConfigArgs(
                vpc_origin_id=vpc_origin.id, origin_read_timeout=30, origin_keepalive_timeout=5),
        )]
        client = args.web_client
        if client is not None:
            origins.append(aws.cloudfront.DistributionOriginArgs(
                origin_id=WEB_ORIGIN,
                domain_name=client.regional_domain_name,
                origin_access_control_id=client.origin_access_control_id,
            ))
            default = aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id=WEB_ORIGIN, allowed_methods=["GET", "HEAD"], cached_methods=CACHED_METHODS,
                viewer_protocol_policy="redirect-to-https", compress=True, cache_policy_id=CACHING_OPTIMIZED,
                response_headers_policy_id=headers.id,
            )
        else:
            default = aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id=API_ORIGIN, allowed_methods=ALL_METHODS, cached_methods=CACHED_METHODS,
                viewer_protocol_policy="redirect-to-https", compress=True, cache_policy_id=CACHING_DISABLED,
                origin_request_policy_id=ALL_VIEWER_EXCEPT_HOST, response_headers_policy_id=headers.id,
            )

        certificate = self._certificate(domain)
        viewer_certificate = (
            aws.cloudfront.DistributionViewerCertificateArgs(
                acm_certificate_arn=certificate, ssl_support_method="sni-only",
                minimum_protocol_version=MIN_VIEWER_TLS)
            if certificate is not None
            # AWS pins the default certificate's policy to TLSv1 (docs/edge.md): only a domain raises it.
            else aws.cloudfront.DistributionViewerCertificateArgs(cloudfront_default_certificate=True)
        )
        distribution = aws.cloudfront.Distribution(
            f"{name}-distribution",
            enabled=True,
            comment=f"{prefix}: web client and API",
            aliases=[domain] if domain else None,
            http_version="http2and3",
            is_ipv6_enabled=True,
            price_class=cfg.edge.price_class,
            default_root_object="index.html" if client is not None else None,
            origins=origins,
            default_cache_behavior=default,
            ordered_cache_behaviors=self._behaviours(headers.id),
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")),
            viewer_certificate=viewer_certificate,
            web_acl_id=acl.arn,
            tags=self._tags(f"{prefix}-edge"),
            opts=child,
        )
        if cfg.edge.pricing_plan != "pay-as-you-go":
            # One distribution and its web ACL per plan; free plans start at once (no approval step).
            aws.pricingplanmanager.Subscription(
                f"{name}-pricing-plan",
                plan_family="CloudFront",
                plan_tier=cfg.edge.pricing_plan.upper(),
                resource_arns=[distribution.arn, acl.arn],
                opts=child,
            )
        if client is not None:
            client.allow_distribution(distribution.arn)
        if cfg.edge.logging:
            self._standard_logging(distribution, key)
        if domain and cfg.gateway.hosted_zone_id:
            for kind in ("A", "AAAA"):
                aws.route53.Record(
                    f"{name}-alias-{kind.lower()}",
                    zone_id=cfg.gateway.hosted_zone_id,
                    name=domain,
                    type=kind,
                    aliases=[aws.route53.RecordAliasArgs(
                        name=distribution.domain_name, zone_id=CLOUDFRONT_ZONE_ID, evaluate_target_health=False)],
                    opts=child,
                )

        self.url = (pulumi.Output.from_input(f"https://{domain}") if domain
                    else pulumi.Output.concat("https://", distribution.domain_name))
        self.distribution_id = distribution.id
        self.distribution_arn = distribution.arn
        self.web_acl_arn = acl.arn
        self.register_outputs({"url": self.url, "distribution_id": self.distribution_id})

    def _tags(self, name: str) -> dict[str, str]:
        return with_name(self._args.tags, name)

    def _behaviours(self, headers_policy: pulumi.Input[str]) -> list[aws.cloudfront.DistributionOrderedCacheBehaviorArgs]:
        """One behaviour per API path, in the config's order; cacheable routes get a TTL-capped policy."""
        cfg, prefix = self._args.config, self._args.name_prefix
        policies: dict[tuple[int, bool, bool], aws.cloudfront.CachePolicy] = {}
        behaviours, seen = [], set()
        # Each service's health path too, uncached: the smoke hook reaches a new revision's test rule
        # through the edge (without the test header the ALB answers 404 there).
        paths = [(route.path, route.cache_seconds, route.cache_query_string, route.auth == "jwt")
                 for svc in cfg.services for route in svc.routes]
        paths += [(svc.health_check.path, 0, False, False) for svc in cfg.services]
        for path, seconds, query, bearer in paths:
            if path in seen:  # host-only variants share the path: CloudFront matches paths only
                continue
            seen.add(path)
            cache_policy: pulumi.Input[str] = CACHING_DISABLED
            if seconds:
                key = (seconds, query, bearer)
                if key not in policies:
                    policies[key] = self._cache_policy(prefix, *key)
                cache_policy = policies[key].id
            # Every method reaches the origin (writes share the read paths); only GET/HEAD are cached.
            behaviours.append(aws.cloudfront.DistributionOrderedCacheBehaviorArgs(
                path_pattern=path,
                target_origin_id=API_ORIGIN,
                allowed_methods=ALL_METHODS,
                cached_methods=CACHED_METHODS,
                viewer_protocol_policy="redirect-to-https",
                compress=True,
                cache_policy_id=cache_policy,
                # The service sees the caller's headers (Authorization on writes included), never a Host
                # the ALB would not know.
                origin_request_policy_id=ALL_VIEWER_EXCEPT_HOST,
                response_headers_policy_id=headers_policy,
            ))
        return behaviours

    def _cache_policy(self, prefix: str, seconds: int, query: bool, bearer: bool = False) -> aws.cloudfront.CachePolicy:
        suffix = f"ttl{seconds}{'-qs' if query else ''}{'-auth' if bearer else ''}"
        # max_ttl == the route's TTL: an origin Cache-Control asking for longer is capped, so no answer
        # outlives the route's TTL after a deploy.
        return aws.cloudfront.CachePolicy(
            f"{self._base}-cache-{suffix}",
            name=f"{prefix}-{suffix}",
            comment=f"{prefix}: cached {seconds} s at most" + (", keyed on the query string" if query else ""),
            min_ttl=0, default_ttl=seconds, max_ttl=seconds,
            parameters_in_cache_key_and_forwarded_to_origin=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginArgs(
                cookies_config=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginCookiesConfigArgs(
                    cookie_behavior="none"),
                # The deployment's test header is in the key: smoke traffic for a new revision never gets
                # production's cached answer (viewers never send it).
                headers_config=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfigArgs(
                    header_behavior="whitelist",
                    headers=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfigHeadersArgs(
                        # A route whose writes need a token: a cached behaviour forwards Authorization
                        # only as part of the key (an origin request policy may not name it). Reads stay
                        # public; a read that carries a token is merely cached apart.
                        items=[TEST_HEADER, *(["Authorization"] if bearer else [])])),
                query_strings_config=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginQueryStringsConfigArgs(
                    query_string_behavior="all" if query else "none"),
                enable_accept_encoding_gzip=True, enable_accept_encoding_brotli=True,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _response_headers(self) -> aws.cloudfront.ResponseHeadersPolicy:
        prefix = self._args.name_prefix
        sec = aws.cloudfront
        return sec.ResponseHeadersPolicy(
            f"{self._base}-headers",
            name=f"{prefix}-security-headers",
            comment=f"{prefix}: HSTS and the usual security headers on every answer",
            security_headers_config=sec.ResponseHeadersPolicySecurityHeadersConfigArgs(
                strict_transport_security=sec.ResponseHeadersPolicySecurityHeadersConfigStrictTransportSecurityArgs(
                    access_control_max_age_sec=HSTS_SECONDS, include_subdomains=True, preload=True, override=True),
                content_type_options=sec.ResponseHeadersPolicySecurityHeadersConfigContentTypeOptionsArgs(override=True),
                frame_options=sec.ResponseHeadersPolicySecurityHeadersConfigFrameOptionsArgs(
                    frame_option="DENY", override=True),
                referrer_policy=sec.ResponseHeadersPolicySecurityHeadersConfigReferrerPolicyArgs(
                    referrer_policy="strict-origin-when-cross-origin", override=True),
                xss_protection=sec.ResponseHeadersPolicySecurityHeadersConfigXssProtectionArgs(
                    protection=True, mode_block=True, override=True),
                content_security_policy=sec.ResponseHeadersPolicySecurityHeadersConfigContentSecurityPolicyArgs(
                    content_security_policy=CONTENT_SECURITY_POLICY, override=True),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _certificate(self, domain: str | None) -> pulumi.Input[str] | None:
        cfg = self._args.config
        if cfg.edge.certificate_arn:
            return cfg.edge.certificate_arn
        if not domain:
            return None
        gateway = self._args.gateway
        if cfg.region == EDGE_REGION and domain == cfg.gateway.domain and gateway.certificate_arn is not None:
            # The ALB's certificate for the same name, already in us-east-1: a second one would share its
            # validation CNAME, and deleting either would break the other's renewal.
            return gateway.certificate_arn
        zone = cfg.gateway.hosted_zone_id
        assert zone is not None  # the schema (infra/config/edge.py) guarantees a zone without a certificate
        child = pulumi.ResourceOptions(parent=self)
        cert = aws.acm.Certificate(
            f"{self._base}-cert", domain_name=domain, validation_method="DNS", region=EDGE_REGION,
            tags=self._tags(domain), opts=child,
        )
        option = cert.domain_validation_options[0]
        record = aws.route53.Record(
            f"{self._base}-cert-validation", zone_id=zone, name=option.resource_record_name,
            type=option.resource_record_type, records=[option.resource_record_value], ttl=60,
            # The ALB's certificate for the same name asks for the same CNAME.
            allow_overwrite=True, opts=child,
        )
        return aws.acm.CertificateValidation(
            f"{self._base}-cert-validated", certificate_arn=cert.arn, validation_record_fqdns=[record.fqdn],
            region=EDGE_REGION, opts=child,
        ).certificate_arn

    def _log_key(self) -> pulumi.Input[str]:
        """The key for the edge's us-east-1 log groups: the stack's own when it is there, else one there."""
        args = self._args
        if args.config.region == EDGE_REGION:
            return args.kms_key_arn
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        policy = account.apply(lambda a: json.dumps(_log_key_policy(a)))
        return aws.kms.Key(
            f"{self._base}-log-key", description=f"{args.name_prefix}: edge logs in {EDGE_REGION}",
            enable_key_rotation=True, deletion_window_in_days=30, policy=policy, region=EDGE_REGION,
            tags=self._tags(f"{args.name_prefix}-edge-logs"), opts=pulumi.ResourceOptions(parent=self),
        ).arn

    def _standard_logging(self, distribution: aws.cloudfront.Distribution, key: pulumi.Input[str]) -> None:
        """CloudFront standard logging (v2) into a KMS-encrypted log group: no ACL-enabled S3 bucket needed."""
        args, name, prefix = self._args, self._base, self._args.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        group = aws.cloudwatch.LogGroup(
            f"{name}-access-logs", name=f"/aws/cloudfront/{prefix}", retention_in_days=args.audit_log_retention_days,
            kms_key_id=key, region=EDGE_REGION, tags=self._tags(f"{prefix}-edge-logs"), opts=child,
        )
        source = aws.cloudwatch.LogDeliverySource(
            f"{name}-log-source", name=f"{prefix}-edge", log_type="ACCESS_LOGS", resource_arn=distribution.arn,
            region=EDGE_REGION, tags=self._tags(f"{prefix}-edge"), opts=child,
        )
        destination = aws.cloudwatch.LogDeliveryDestination(
            f"{name}-log-destination", name=f"{prefix}-edge-logs", output_format="json", region=EDGE_REGION,
            delivery_destination_configuration=aws.cloudwatch.LogDeliveryDestinationDeliveryDestinationConfigurationArgs(
                destination_resource_arn=group.arn),
            tags=self._tags(f"{prefix}-edge-logs"), opts=child,
        )
        aws.cloudwatch.LogDelivery(
            f"{name}-log-delivery", delivery_source_name=source.name, delivery_destination_arn=destination.arn,
            region=EDGE_REGION, tags=self._tags(f"{prefix}-edge-logs"), opts=child,
        )


def _log_key_policy(account: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "LogsEncrypt", "Effect": "Allow", "Principal": {"Service": f"logs.{EDGE_REGION}.amazonaws.com"},
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
             "Resource": "*",
             "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{EDGE_REGION}:{account}:*"}}},
        ],
    }
