"""The gateway layer: the internal ALB behind the edge's VPC origin, its TLS, access logs and (opt-in) WAF.

Services attach their listener rules to `listener_arn` and add their own egress rule on the ALB's
security group; this layer owns only what every service shares.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.waf import visibility, waf_logging, waf_rules
from infra.config import GatewayConfig, naming
from infra.tags import with_name

# CloudFront's origin-facing addresses (AWS-managed prefix list). It weighs 55 rules against the
# security group's rule quota (60 by default): the ALB admits it on one port only.
CLOUDFRONT_ORIGIN_FACING = "com.amazonaws.global.cloudfront.origin-facing"
# TLS 1.3 with 1.2 as the floor: AWS's recommended policy, no CBC or SHA-1 suites.
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# A deleted or overwritten access log stays recoverable this long. Expiry itself also leaves a
# noncurrent version behind: a short window keeps storage close to the retention period.
NONCURRENT_LOG_DAYS = 30


@dataclass
class GatewayArgs:
    config: GatewayConfig
    name_prefix: str
    vpc_id: pulumi.Input[str]
    # Private subnets: the ALB is internal, CloudFront reaches it through a VPC origin.
    subnet_ids: Sequence[pulumi.Input[str]]
    # The WAF log group's key; WAF and access logs are audit logs, kept this many days.
    kms_key_arn: pulumi.Input[str]
    audit_log_retention_days: int
    tags: dict[str, str]
    # A route has `auth_enforced_by: alb`: the ALB fetches the issuer's JWKS itself.
    fetches_jwks: bool = False


class Gateway(pulumi.ComponentResource):
    security_group_id: pulumi.Output[str]
    listener_arn: pulumi.Output[str]
    load_balancer_arn: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    zone_id: pulumi.Output[str]
    url: pulumi.Output[str]
    web_acl_arn: pulumi.Output[str] | None
    certificate_arn: pulumi.Input[str] | None
    origin_port: int
    origin_protocol: str

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:gateway:Gateway", name, None, opts)
        self._base, self._args = name, args
        cfg, prefix = args.config, args.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        alb_name = naming.alb_name(prefix)  # checked by the schema (infra/config/naming.py)

        # No inline rules, and no egress at all: the provider removes AWS's default allow-all
        # egress on create, and each service opens exactly ALB -> its own port.
        sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            name=f"{prefix}-alb",
            description="ALB: only CloudFront's VPC origin; egress only to services, added by each",
            vpc_id=args.vpc_id,
            tags=self._tags(f"{prefix}-alb"),
            opts=child,
        )
        # HTTPS to the origin where the ALB has a certificate; otherwise HTTP, which never leaves the VPC
        # (CloudFront's VPC origin connects from inside it). Nothing is admitted from 0.0.0.0/0.
        self.origin_port, self.origin_protocol = (443, "https-only") if cfg.tls else (80, "http-only")
        origin_facing = aws.ec2.get_managed_prefix_list_output(
            name=CLOUDFRONT_ORIGIN_FACING, opts=pulumi.InvokeOutputOptions(parent=self))
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-alb-in-{self.origin_port}",
            security_group_id=sg.id,
            description=f"CloudFront VPC origin to the ALB on {self.origin_port}",
            prefix_list_id=origin_facing.id,
            ip_protocol="tcp",
            from_port=self.origin_port,
            to_port=self.origin_port,
            tags=self._tags(f"{prefix}-alb-in-{self.origin_port}"),
            opts=child,
        )

        if args.fetches_jwks:
            # The jwt-validation action fetches the issuer's public JWKS (AWS: "must be publicly
            # accessible"); like authenticate-oidc on an internal ALB, that is assumed to leave from the
            # ALB's nodes through the NAT, so the ALB may open HTTPS out. Unverified without a deploy.
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-alb-out-jwks",
                security_group_id=sg.id,
                description="ALB to the token issuer's JWKS endpoint (HTTPS)",
                cidr_ipv4="0.0.0.0/0",
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                tags=self._tags(f"{prefix}-alb-out-jwks"),
                opts=child,
            )

        access_logs = None
        depends: list[pulumi.Resource] = []
        if cfg.access_logs:
            bucket, policy = self._access_log_bucket()
            access_logs = aws.lb.LoadBalancerAccessLogsArgs(bucket=bucket.bucket, enabled=True)
            # ELB test-writes to the bucket when logging is switched on: the policy must exist first.
            depends.append(policy)

        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            name=alb_name,
            load_balancer_type="application",
            internal=True,
            ip_address_type="ipv4",
            security_groups=[sg.id],
            subnets=list(args.subnet_ids),
            # Requests with malformed headers are a request-smuggling vector; drop them at the edge.
            drop_invalid_header_fields=True,
            enable_deletion_protection=cfg.deletion_protection,
            idle_timeout=cfg.idle_timeout,
            access_logs=access_logs,
            tags=self._tags(alb_name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )

        certificate_arn = self._certificate()
        # The edge reuses it when both live in us-east-1 for the same name (one validation record).
        self.certificate_arn = certificate_arn
        if certificate_arn is not None:
            https = aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=self.alb.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy=SSL_POLICY,
                certificate_arn=certificate_arn,
                default_actions=[_not_found()],
                tags=self._tags(f"{prefix}-https"),
                opts=child,
            )
            self.listener_arn = https.arn
        else:
            # No TLS (dev only; the config refuses it for prod): services route on plain HTTP.
            http = aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=self.alb.arn,
                port=80,
                protocol="HTTP",
                default_actions=[_not_found()],
                tags=self._tags(f"{prefix}-http"),
                opts=child,
            )
            self.listener_arn = http.arn

        # No DNS record here: the domain names the CloudFront distribution (infra/aws/edge.py); the ALB
        # keeps it only as the origin name CloudFront sends and checks its certificate against.

        self.web_acl_arn = self._waf() if cfg.waf else None

        self.security_group_id = sg.id
        self.load_balancer_arn = self.alb.arn
        self.arn_suffix = self.alb.arn_suffix
        self.dns_name = self.alb.dns_name
        self.zone_id = self.alb.zone_id
        # The ALB's own (VPC-internal) address; the program points `url` at the edge once it exists
        # (infra/aws/program.py), since nothing outside the VPC reaches this one.
        self.url = pulumi.Output.concat("https://" if cfg.tls else "http://", self.alb.dns_name)

        self.register_outputs({
            "security_group_id": self.security_group_id,
            "listener_arn": self.listener_arn,
            "load_balancer_arn": self.load_balancer_arn,
            "url": self.url,
        })

    def _tags(self, name: str) -> dict[str, str]:
        return with_name(self._args.tags, name)

    def _certificate(self) -> pulumi.Input[str] | None:
        """The HTTPS listener's certificate: the configured one, or one issued for `domain`."""
        cfg = self._args.config
        if cfg.certificate_arn:
            return cfg.certificate_arn
        if not cfg.domain:
            return None
        # The config guarantees a hosted zone when a domain comes without a certificate.
        assert cfg.hosted_zone_id is not None
        child = pulumi.ResourceOptions(parent=self)
        cert = aws.acm.Certificate(
            f"{self._base}-cert",
            domain_name=cfg.domain,
            validation_method="DNS",
            tags=self._tags(cfg.domain),
            opts=child,
        )
        # One domain, no SANs: exactly one validation record.
        option = cert.domain_validation_options[0]
        record = aws.route53.Record(
            f"{self._base}-cert-validation",
            zone_id=cfg.hosted_zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=60,
            # The same CNAME may exist from an earlier certificate for the domain.
            allow_overwrite=True,
            opts=child,
        )
        # Waits until ACM has issued the certificate, so the listener never gets a pending one.
        validation = aws.acm.CertificateValidation(
            f"{self._base}-cert-validated",
            certificate_arn=cert.arn,
            validation_record_fqdns=[record.fqdn],
            opts=child,
        )
        return validation.certificate_arn

    def _access_log_bucket(self) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
        cfg, prefix, name = self._args.config, self._args.name_prefix, self._base
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        region = aws.get_region_output(opts=invoke).region
        # Bucket names are global: the account and region make this one unique without a random suffix.
        bucket_name = pulumi.Output.all(account, region).apply(lambda v: naming.access_log_bucket(prefix, *v))
        bucket = aws.s3.Bucket(
            f"{name}-access-logs",
            bucket=bucket_name,
            # A deletion-protected gateway keeps its logs; otherwise the stack can be torn down whole.
            force_destroy=not cfg.deletion_protection,
            tags=self._tags(f"{prefix}-alb-logs"),
            opts=child,
        )
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-access-logs-private",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        # ACLs off: every object belongs to the bucket owner whoever wrote it (ELB supports this).
        aws.s3.BucketOwnershipControls(
            f"{name}-access-logs-owner",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        # ALB access logs support only SSE-S3 (AES256): with SSE-KMS the ALB cannot write them.
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-access-logs-sse",
            bucket=bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256",
                ),
            )],
            opts=child,
        )
        # Versioned: a log overwritten or deleted early stays recoverable for NONCURRENT_LOG_DAYS.
        versioning = aws.s3.BucketVersioning(
            f"{name}-access-logs-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        days = self._args.audit_log_retention_days
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-access-logs-expiry",
            bucket=bucket.id,
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-access-logs",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=NONCURRENT_LOG_DAYS,
                ),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=1,
                ),
            )],
            # S3 wants versioning settled before a lifecycle rule on noncurrent versions.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        elb_account = aws.elb.get_service_account_output(opts=invoke).arn
        document = pulumi.Output.all(bucket.arn, account, elb_account).apply(
            lambda v: json.dumps(_access_log_policy(*v))
        )
        # S3 rejects concurrent policy and public-access-block updates on one bucket: serialise them.
        policy = aws.s3.BucketPolicy(
            f"{name}-access-logs-policy",
            bucket=bucket.id,
            policy=document,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block]),
        )
        return bucket, policy

    def _waf(self) -> pulumi.Output[str]:
        cfg, prefix, name = self._args.config, self._args.name_prefix, self._base
        acl = aws.wafv2.WebAcl(
            f"{name}-waf",
            name=f"{prefix}-web-acl",
            # WAF descriptions allow letters, digits, whitespace and +=:#@/-,. only.
            description=re.sub(r"[^\w+=:#@/\-,. ]", " ", f"{prefix}: kept beside the edge ACL: {cfg.waf_reason}")[:256].strip(),
            scope="REGIONAL",
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=waf_rules(prefix, cfg.waf_rate_limit),
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(**visibility(f"{prefix}-web-acl")),
            tags=self._tags(f"{prefix}-web-acl"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.wafv2.WebAclAssociation(
            f"{name}-waf-alb",
            resource_arn=self.alb.arn,
            web_acl_arn=acl.arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        waf_logging(self, name, acl, group_name=f"aws-waf-logs-{prefix}", kms_key_arn=self._args.kms_key_arn,
                    retention_days=self._args.audit_log_retention_days, tags=self._tags(f"aws-waf-logs-{prefix}"))
        return acl.arn


def _not_found() -> aws.lb.ListenerDefaultActionArgs:
    # Anything no service claims gets a plain 404 from the ALB, never some service's catch-all.
    return aws.lb.ListenerDefaultActionArgs(
        type="fixed-response",
        fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
            content_type="text/plain", message_body="Not Found", status_code="404",
        ),
    )


def _access_log_policy(bucket_arn: str, account: str, elb_account_arn: str) -> dict:
    logs = f"{bucket_arn}/AWSLogs/{account}/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {  # Regions older than August 2022 deliver as the region's ELB account...
                "Sid": "ElbAccountDelivers",
                "Effect": "Allow",
                "Principal": {"AWS": elb_account_arn},
                "Action": "s3:PutObject",
                "Resource": logs,
            },
            {  # ...newer ones as the log delivery service principal.
                "Sid": "ElbServiceDelivers",
                "Effect": "Allow",
                "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": logs,
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }
