"""The web client's bucket: private, encrypted, readable only by this stack's CloudFront distribution.

The bucket is created before the distribution (which needs its domain and the OAC) and its policy
after it (which names the distribution): `allow_distribution` closes the loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.tags import with_name

# OAC signs every origin request (SigV4); the legacy origin access identity is not used.
OAC_SIGNING = {"origin_access_control_origin_type": "s3", "signing_behavior": "always", "signing_protocol": "sigv4"}


@dataclass
class WebClientArgs:
    name_prefix: str
    force_destroy: bool
    tags: dict[str, str]


class WebClient(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    regional_domain_name: pulumi.Output[str]
    origin_access_control_id: pulumi.Output[str]

    def __init__(self, name: str, args: WebClientArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:client:WebClient", name, None, opts)
        self._base, prefix = name, args.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        region = aws.get_region_output(opts=invoke).region
        # Globally unique without a random suffix: account and region in the name (<= 63 characters
        # for every prefix the naming rules allow, the same shape as the access log bucket's).
        bucket_name = pulumi.Output.all(account, region).apply(lambda v: f"{prefix}-web-{v[0]}-{v[1]}"[:63].rstrip("-"))
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket", bucket=bucket_name, force_destroy=args.force_destroy,
            tags=with_name(args.tags, f"{prefix}-web"), opts=child,
        )
        self._public_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-private", bucket=self.bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-owner", bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), opts=child,
        )
        # SSE-S3: OAC reads it with no key policy; SSE-KMS would need the stack key to trust CloudFront.
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sse", bucket=self.bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"),
                bucket_key_enabled=True,
            )],
            opts=child,
        )
        # Versioned: an upload that broke the page can be undone by restoring the previous index.html.
        aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        oac = aws.cloudfront.OriginAccessControl(
            f"{name}-oac", name=f"{prefix}-web", description=f"{prefix}: CloudFront reads the web client",
            **OAC_SIGNING, opts=child,
        )
        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        self.regional_domain_name = self.bucket.bucket_regional_domain_name
        self.origin_access_control_id = oac.id
        self.register_outputs({"bucket_name": self.bucket_name})

    def allow_distribution(self, distribution_arn: pulumi.Input[str]) -> aws.s3.BucketPolicy:
        document = pulumi.Output.all(self.bucket.arn, distribution_arn).apply(lambda v: json.dumps(client_policy(*v)))
        # S3 rejects concurrent policy and public-access-block updates on one bucket: serialise them.
        return aws.s3.BucketPolicy(
            f"{self._base}-policy", bucket=self.bucket.id, policy=document,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._public_block]),
        )


def client_policy(bucket_arn: str, distribution_arn: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {  # Only this distribution, through OAC: the confused-deputy condition names it.
                "Sid": "CloudFrontReadsThroughOac",
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "s3:GetObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
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
