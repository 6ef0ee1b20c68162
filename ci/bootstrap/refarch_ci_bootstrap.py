"""What CI needs in an AWS account, created once: OIDC trust, CI roles, Pulumi state and secrets key.

- the GitHub OIDC provider (or the account's existing one, by ARN);
- one deploy role per environment, assumable only by a job of this repository running in that
  GitHub environment (`sub` = `repo:<owner>/<repo>:environment:<env>`, `aud` = sts.amazonaws.com);
- one read-only role for pull-request previews and the nightly drift check;
- the Pulumi state bucket (versioned, SSE-KMS, public access blocked, TLS only) and the KMS key
  that encrypts it and the stacks' secrets (`awskms://` secrets provider). One key: both are read
  by exactly the same roles, and a second key would be a second $1/month for no separation.

Permissions: the account is the blast radius (one account per environment is the recommended
layout); inside an account each deploy role reaches only resources named `<project>-<env>...`
wherever the service supports resource-level permissions, and only the configured region for the
services whose resources carry generated ids (EC2, ACM, Application Auto Scaling).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
STS_AUDIENCE = "sts.amazonaws.com"
# The release ledger and deploy lock of ops/delivery live under this SSM path, per stack.
LEDGER_ROOT = "/refarch"
# Services a deploy role may pass roles to: ECS tasks (execution/task roles) and VPC flow logs.
PASSABLE_TO = ["ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com"]
# Service-linked roles the stack's services create on first use in an account.
SERVICE_LINKED = ["ecs.amazonaws.com", "elasticache.amazonaws.com", "rds.amazonaws.com",
                  "elasticloadbalancing.amazonaws.com", "ecs.application-autoscaling.amazonaws.com"]
# Noncurrent state versions are the undo history of every stack; a year of it is cheap.
STATE_VERSIONS_DAYS = 365
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,20}$")


@dataclass(frozen=True)
class BootstrapConfig:
    repository: str  # owner/name on GitHub
    environments: tuple[str, ...] = ("dev", "staging", "prod")
    default_branch: str = "main"
    project: str = "refarch"
    hosted_zone_ids: tuple[str, ...] = ()
    # An account has one provider per URL: pass its ARN if it exists already.
    oidc_provider_arn: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not REPOSITORY.match(self.repository):
            problems.append(f"github_repository: {self.repository!r} is not <owner>/<name>")
        if not self.environments:
            problems.append("environments: at least one")
        problems += [f"environments: {e!r} is not a lower-case name" for e in self.environments if not NAME.match(e)]
        if len(set(self.environments)) != len(self.environments):
            problems.append("environments: listed twice")
        if not NAME.match(self.project):
            problems.append(f"project: {self.project!r} is not a lower-case name")
        if problems:
            raise ValueError("invalid bootstrap config: " + "; ".join(problems))

    @classmethod
    def from_pulumi(cls) -> BootstrapConfig:
        cfg = pulumi.Config()
        return cls(
            repository=cfg.require("github_repository"),
            environments=tuple(cfg.get_object("environments") or cls.environments),
            default_branch=cfg.get("default_branch") or "main",
            project=cfg.get("project") or "refarch",
            hosted_zone_ids=tuple(cfg.get_object("hosted_zone_ids") or ()),
            oidc_provider_arn=cfg.get("oidc_provider_arn"),
        )

    def promotes_from(self, env: str) -> str | None:
        """The environment whose verified release `env` is promoted from (the previous one)."""
        i = self.environments.index(env)
        return self.environments[i - 1] if i else None


@dataclass(frozen=True)
class Account:
    account: str
    region: str
    partition: str


# --- documents (pure: tested without Pulumi) ----------------------------------------------------

def github_trust(provider_arn: str, subjects: Sequence[str]) -> dict[str, Any]:
    """Only tokens for this audience and exactly these subjects (no wildcards) may assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                f"{GITHUB_OIDC_HOST}:sub": list(subjects),
            }},
        }],
    }


def deploy_subject(repository: str, env: str) -> str:
    return f"repo:{repository}:environment:{env}"


def preview_subjects(repository: str, default_branch: str) -> list[str]:
    # Pull requests of this repository (forks get no token) and scheduled runs on the default branch.
    return [f"repo:{repository}:pull_request", f"repo:{repository}:ref:refs/heads/{default_branch}"]


def _region(where: Account) -> dict[str, Any]:
    return {"StringEquals": {"aws:RequestedRegion": where.region}}


def state_statements(bucket: str, key_arn: str, project: str, env: str | None, where: Account) -> list[dict[str, Any]]:
    """The Pulumi DIY backend under `.pulumi/`: one stack's files for a deploy role, all for reading."""
    p = where.partition
    objects = f"arn:{p}:s3:::{bucket}/.pulumi/*/{project}/{env}*" if env else f"arn:{p}:s3:::{bucket}/.pulumi/*"
    statements: list[dict[str, Any]] = [
        {"Sid": "StateList", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": f"arn:{p}:s3:::{bucket}", "Condition": {"StringLike": {"s3:prefix": [".pulumi/*"]}}},
        {"Sid": "StateMeta", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"arn:{p}:s3:::{bucket}/.pulumi/meta.yaml"},
    ]
    if env:
        statements.append({"Sid": "StateReadWrite", "Effect": "Allow",
                           "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": objects})
    else:
        statements += [
            {"Sid": "StateRead", "Effect": "Allow", "Action": "s3:GetObject", "Resource": objects},
            # Pulumi may take the stack lock for a preview or refresh; nothing else is written.
            {"Sid": "StateLocks", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"],
             "Resource": f"arn:{p}:s3:::{bucket}/.pulumi/locks/*"},
        ]
    statements.append({"Sid": "StateKey", "Effect": "Allow",
                       "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                       "Resource": key_arn})
    return statements


def deploy_infrastructure_policy(project: str, env: str, where: Account,
                                 hosted_zone_ids: Sequence[str] = ()) -> dict[str, Any]:
    """What `pulumi up` of one stack creates, changes and deletes."""
    a, r, p = where.account, where.region, where.partition
    name = f"{project}-{env}"

    def arns(service: str, *resources: str, region: str = r, account: str = a) -> list[str]:
        return [f"arn:{p}:{service}:{region}:{account}:{res}" for res in resources]

    zones = [f"arn:{p}:route53:::hostedzone/{z}" for z in hosted_zone_ids] or [f"arn:{p}:route53:::hostedzone/*"]
    return {"Version": "2012-10-17", "Statement": [
        # Generated ids (vpc-..., subnet-..., certificate/<uuid>): bounded by region, not by name.
        {"Sid": "GeneratedIdServices", "Effect": "Allow", "Resource": "*", "Condition": _region(where),
         "Action": ["ec2:*", "acm:*", "application-autoscaling:*"]},
        # Reads and calls that AWS authorizes only on "*".
        {"Sid": "UnscopedCalls", "Effect": "Allow", "Resource": "*", "Condition": _region(where), "Action": [
            "elasticloadbalancing:Describe*", "ecs:Describe*", "ecs:List*", "ecs:RegisterTaskDefinition",
            "ecs:DeregisterTaskDefinition", "ecs:TagResource", "rds:Describe*", "rds:ListTagsForResource",
            "elasticache:Describe*", "elasticache:ListTagsForResource", "logs:Describe*", "logs:ListTagsForResource",
            "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
            "logs:ListLogDeliveries", "logs:PutResourcePolicy", "cloudwatch:Describe*", "cloudwatch:List*",
            "sns:List*", "secretsmanager:List*", "secretsmanager:GetRandomPassword", "wafv2:List*",
            "wafv2:Get*", "wafv2:Describe*", "ecr:GetAuthorizationToken", "ecr:DescribeRegistry",
            "kms:ListAliases", "kms:ListKeys", "ssm:DescribeParameters", "s3:ListAllMyBuckets"]},
        {"Sid": "LoadBalancer", "Effect": "Allow", "Action": "elasticloadbalancing:*",
         "Resource": arns("elasticloadbalancing", f"loadbalancer/app/{name}-*/*", f"targetgroup/{name}-*/*",
                          f"listener/app/{name}-*/*", f"listener-rule/app/{name}-*/*")},
        {"Sid": "Ecs", "Effect": "Allow", "Action": "ecs:*",
         "Resource": arns("ecs", f"cluster/{name}", f"service/{name}/*", f"task/{name}/*",
                          f"task-definition/{name}-*:*", f"container-instance/{name}/*")},
        {"Sid": "Ecr", "Effect": "Allow", "Action": "ecr:*", "Resource": arns("ecr", f"repository/{name}/*")},
        {"Sid": "Logs", "Effect": "Allow", "Action": "logs:*",
         "Resource": arns("logs", f"log-group:/{name}/*", f"log-group:/ecs/{name}/*",
                          f"log-group:/aws/rds/instance/{name}-*")},
        {"Sid": "Rds", "Effect": "Allow", "Action": "rds:*",
         "Resource": arns("rds", f"db:{name}-*", f"pg:{name}-*", f"subgrp:{name}-*", f"snapshot:{name}-*",
                          "og:default:*", "pg:default.*")},
        {"Sid": "Cache", "Effect": "Allow", "Action": "elasticache:*",
         "Resource": arns("elasticache", f"replicationgroup:{name}-*", f"cluster:{name}-*",
                          f"subnetgroup:{name}-*", f"snapshot:{name}-*", "parametergroup:default.*", "user:default")},
        # Target tracking policies make Application Auto Scaling create alarms named after the service.
        {"Sid": "Alarms", "Effect": "Allow", "Action": "cloudwatch:*",
         "Resource": [*arns("cloudwatch", f"alarm:{name}-*", f"alarm:TargetTracking-service/{name}/*"),
                      f"arn:{p}:cloudwatch::{a}:dashboard/{name}",
                      f"arn:{p}:cloudwatch::{a}:dashboard/{name}-*"]},
        {"Sid": "Topics", "Effect": "Allow", "Action": "sns:*", "Resource": arns("sns", f"{name}-*")},
        {"Sid": "Secrets", "Effect": "Allow", "Action": "secretsmanager:*", "Resource": arns("secretsmanager", f"secret:{name}/*")},
        # RDS creates the managed master-user secret (rds!db-...) in the caller's name.
        {"Sid": "RdsManagedSecret", "Effect": "Allow",
         "Action": ["secretsmanager:CreateSecret", "secretsmanager:TagResource", "secretsmanager:DescribeSecret"],
         "Resource": arns("secretsmanager", "secret:rds!*")},
        {"Sid": "Waf", "Effect": "Allow", "Action": "wafv2:*",
         "Resource": arns("wafv2", f"regional/webacl/{name}-*/*", "regional/managedruleset/*/*")},
        {"Sid": "AccessLogBucket", "Effect": "Allow", "Action": "s3:*",
         "Resource": [f"arn:{p}:s3:::{name}-*", f"arn:{p}:s3:::{name}-*/*"]},
        # The stack's own KMS key: created with the stack tag, then usable only while it carries it.
        {"Sid": "KmsCreate", "Effect": "Allow", "Action": ["kms:CreateKey", "kms:TagResource"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/stack": env, "aws:RequestedRegion": r}}},
        {"Sid": "KmsOwnKey", "Effect": "Allow", "Action": "kms:*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/stack": env, "aws:ResourceTag/project": project}}},
        {"Sid": "KmsAlias", "Effect": "Allow", "Action": ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"],
         "Resource": arns("kms", f"alias/{name}-*")},
        {"Sid": "Roles", "Effect": "Allow", "Resource": [f"arn:{p}:iam::{a}:role/{name}-*"], "Action": [
            "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:UpdateRoleDescription",
            "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole", "iam:ListRoleTags", "iam:PutRolePolicy",
            "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
            "iam:ListInstanceProfilesForRole"]},
        {"Sid": "PassStackRoles", "Effect": "Allow", "Action": "iam:PassRole",
         "Resource": [f"arn:{p}:iam::{a}:role/{name}-*"],
         "Condition": {"StringEquals": {"iam:PassedToService": PASSABLE_TO}}},
        {"Sid": "ServiceLinkedRoles", "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole",
         "Resource": f"arn:{p}:iam::{a}:role/aws-service-role/*",
         "Condition": {"StringEquals": {"iam:AWSServiceName": SERVICE_LINKED}}},
        {"Sid": "Dns", "Effect": "Allow", "Resource": zones,
         "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets", "route53:GetHostedZone"]},
        {"Sid": "DnsChanges", "Effect": "Allow", "Resource": "*",
         "Action": ["route53:GetChange", "route53:ListHostedZones", "route53:ListHostedZonesByName"]},
    ]}


def deploy_delivery_policy(project: str, env: str, source_env: str | None, bucket: str, key_arn: str,
                           where: Account) -> dict[str, Any]:
    """What the Invoke delivery tasks do beside `up`: state, ledger and lock, promotion source."""
    a, r, p = where.account, where.region, where.partition
    statements = state_statements(bucket, key_arn, project, env, where)
    statements.append({"Sid": "LedgerAndLock", "Effect": "Allow", "Action": [
        "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParameterHistory", "ssm:GetParametersByPath",
        "ssm:PutParameter", "ssm:DeleteParameter", "ssm:AddTagsToResource", "ssm:ListTagsForResource"],
        "Resource": [f"arn:{p}:ssm:{r}:{a}:parameter{LEDGER_ROOT}/{env}", f"arn:{p}:ssm:{r}:{a}:parameter{LEDGER_ROOT}/{env}/*"]})
    if source_env:
        # Promotion reads the source stack's ledger and copies its images by digest.
        statements += [
            {"Sid": "PromotionLedger", "Effect": "Allow",
             "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParameterHistory", "ssm:GetParametersByPath"],
             "Resource": f"arn:{p}:ssm:{r}:{a}:parameter{LEDGER_ROOT}/{source_env}/*"},
            {"Sid": "PromotionImages", "Effect": "Allow",
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability",
                        "ecr:DescribeImages"],
             "Resource": f"arn:{p}:ecr:{r}:{a}:repository/{project}-{source_env}/*"},
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def preview_policy(project: str, bucket: str, key_arn: str, where: Account) -> dict[str, Any]:
    """Read-only: enough for `pulumi preview` and `pulumi refresh --preview-only` of every stack.

    Reads of configuration, never of data: no GetSecretValue, no S3 objects outside the state,
    no log events, no SSM parameters outside the ledger.
    """
    a, r, p = where.account, where.region, where.partition
    statements = state_statements(bucket, key_arn, project, None, where)
    statements += [
        {"Sid": "DescribeRegional", "Effect": "Allow", "Resource": "*", "Condition": _region(where), "Action": [
            "ec2:Describe*", "elasticloadbalancing:Describe*", "ecs:Describe*", "ecs:List*", "ecr:Describe*",
            "ecr:List*", "ecr:GetLifecyclePolicy", "ecr:GetRepositoryPolicy", "rds:Describe*",
            "rds:ListTagsForResource", "elasticache:Describe*", "elasticache:ListTagsForResource", "logs:Describe*",
            "logs:ListTagsForResource", "logs:ListTagsLogGroup", "logs:GetLogDelivery", "cloudwatch:Describe*",
            "cloudwatch:List*", "cloudwatch:GetDashboard", "sns:GetTopicAttributes", "sns:GetSubscriptionAttributes",
            "sns:List*", "kms:DescribeKey", "kms:List*", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus",
            "secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy", "secretsmanager:List*",
            "wafv2:Get*", "wafv2:List*", "acm:Describe*", "acm:List*", "acm:GetCertificate",
            "application-autoscaling:Describe*", "ssm:DescribeParameters"]},
        # S3 bucket configuration (what refresh compares), not objects.
        {"Sid": "DescribeBuckets", "Effect": "Allow", "Resource": f"arn:{p}:s3:::{project}-*", "Action": [
            "s3:GetBucket*", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration",
            "s3:GetAccelerateConfiguration", "s3:GetReplicationConfiguration"]},
        {"Sid": "DescribeGlobal", "Effect": "Allow", "Resource": "*",
         "Action": ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
                    "iam:GetPolicy", "iam:GetPolicyVersion", "iam:GetOpenIDConnectProvider",
                    "route53:GetHostedZone", "route53:ListHostedZones", "route53:ListResourceRecordSets"]},
        {"Sid": "ReadLedgers", "Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:GetParameters",
                                                             "ssm:GetParameterHistory", "ssm:GetParametersByPath"],
         "Resource": f"arn:{p}:ssm:{r}:{a}:parameter{LEDGER_ROOT}/*"},
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def key_policy(account: str, partition: str) -> dict[str, Any]:
    # Account-administered: the roles' IAM policies above decide who uses the key.
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
        "Action": "kms:*", "Resource": "*"}]}


def tls_only_policy(bucket_arn: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


# --- the component -------------------------------------------------------------------------------

class CiBootstrap(pulumi.ComponentResource):
    state_bucket: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    backend_url: pulumi.Output[str]
    secrets_provider: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    preview_role_arn: pulumi.Output[str]
    deploy_role_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, config: BootstrapConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch-bootstrap:ci:CiBootstrap", name, None, opts)
        self._config = config
        invoke = pulumi.InvokeOutputOptions(parent=self)
        where = pulumi.Output.all(
            aws.get_caller_identity_output(opts=invoke).account_id,
            aws.get_region_output(opts=invoke).region,
            aws.get_partition_output(opts=invoke).partition,
        ).apply(lambda v: Account(*v))
        project = config.project
        tags = {"project": project, "managed-by": "pulumi", "component": "ci-bootstrap", **config.tags}
        child = pulumi.ResourceOptions(parent=self)
        # Losing either loses every stack's state or secrets: `pulumi destroy` must refuse them.
        kept = pulumi.ResourceOptions(parent=self, protect=True)

        key = aws.kms.Key(
            f"{name}-state-key",
            description=f"{project}: Pulumi state bucket and stack secrets (awskms:// secrets provider)",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=where.apply(lambda w: json.dumps(key_policy(w.account, w.partition))),
            tags={**tags, "Name": f"{project}-pulumi"},
            opts=kept,
        )
        alias = aws.kms.Alias(f"{name}-state-key-alias", name=f"alias/{project}-pulumi",
                              target_key_id=key.key_id, opts=child)

        bucket = aws.s3.Bucket(
            f"{name}-state",
            bucket=where.apply(lambda w: f"{project}-pulumi-state-{w.account}-{w.region}"),
            force_destroy=False,
            tags={**tags, "Name": f"{project}-pulumi-state"},
            opts=kept,
        )
        aws.s3.BucketVersioning(
            f"{name}-state-versioning", bucket=bucket.id,
            versioning_configuration={"status": "Enabled"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-state-sse", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                                "kms_master_key_id": key.arn},
                    # One data key per bucket instead of one KMS call per object: cheaper, same protection.
                    "bucket_key_enabled": True}],
            opts=child)
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-state-private", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        aws.s3.BucketOwnershipControls(
            f"{name}-state-owner", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-state-history", bucket=bucket.id,
            rules=[{"id": "expire-old-state-versions", "status": "Enabled", "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {"noncurrent_days": STATE_VERSIONS_DAYS},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7}}],
            opts=child)
        # S3 rejects concurrent policy and public-access-block updates on one bucket: serialise them.
        aws.s3.BucketPolicy(
            f"{name}-state-tls-only", bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(tls_only_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block]))

        if config.oidc_provider_arn:
            provider_arn: pulumi.Output[str] = pulumi.Output.from_input(config.oidc_provider_arn)
        else:
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-github",
                url=GITHUB_OIDC_URL,
                client_id_lists=[STS_AUDIENCE],
                # No thumbprint: IAM verifies GitHub's certificate against its own trusted CAs.
                tags={**tags, "Name": "github-actions"},
                opts=kept,
            )
            provider_arn = provider.arn

        role_inputs = pulumi.Output.all(where, provider_arn, bucket.bucket, key.arn)
        preview = aws.iam.Role(
            f"{name}-preview",
            name=f"{project}-ci-preview",
            description="CI read-only: pull-request previews and the nightly drift check",
            assume_role_policy=provider_arn.apply(
                lambda arn: json.dumps(github_trust(arn, preview_subjects(config.repository, config.default_branch)))),
            tags={**tags, "Name": f"{project}-ci-preview"},
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-preview-read", role=preview.id, name="read-only",
            policy=role_inputs.apply(lambda v: json.dumps(preview_policy(project, v[2], v[3], v[0]))),
            opts=child)

        self.deploy_role_arns = {}
        for env in config.environments:
            role = self._deploy_role(name, env, provider_arn, tags, child)
            aws.iam.RolePolicy(
                f"{name}-deploy-{env}-infrastructure", role=role.id, name="infrastructure",
                policy=where.apply(_infrastructure_json(config, env)), opts=child)
            aws.iam.RolePolicy(
                f"{name}-deploy-{env}-delivery", role=role.id, name="delivery",
                policy=role_inputs.apply(_delivery_json(config, env)), opts=child)
            self.deploy_role_arns[env] = role.arn

        self.state_bucket = bucket.bucket
        self.key_arn = key.arn
        self.backend_url = pulumi.Output.concat("s3://", bucket.bucket, "?region=", where.apply(lambda w: w.region))
        self.secrets_provider = pulumi.Output.concat(
            "awskms://", alias.name, "?region=", where.apply(lambda w: w.region))
        self.oidc_provider_arn = provider_arn
        self.preview_role_arn = preview.arn
        self.register_outputs({"state_bucket": self.state_bucket, "backend_url": self.backend_url})

    def _deploy_role(self, name: str, env: str, provider_arn: pulumi.Output[str], tags: dict[str, str],
                     child: pulumi.ResourceOptions) -> aws.iam.Role:
        repository, project = self._config.repository, self._config.project

        def trust(arn: str) -> str:
            return json.dumps(github_trust(arn, [deploy_subject(repository, env)]))

        return aws.iam.Role(
            f"{name}-deploy-{env}",
            name=f"{project}-ci-deploy-{env}",
            description=f"CI deploys of stack {env}: jobs in the GitHub environment {env} only",
            assume_role_policy=provider_arn.apply(trust),
            # A prod rollout with its bake window can outlast the default hour.
            max_session_duration=7200,
            tags={**tags, "Name": f"{project}-ci-deploy-{env}", "environment": env},
            opts=child,
        )


def _infrastructure_json(config: BootstrapConfig, env: str) -> Callable[[Account], str]:
    def render(where: Account) -> str:
        return json.dumps(deploy_infrastructure_policy(config.project, env, where, config.hosted_zone_ids))
    return render


def _delivery_json(config: BootstrapConfig, env: str) -> Callable[[list[Any]], str]:
    def render(values: list[Any]) -> str:
        where, _, bucket, key_arn = values
        return json.dumps(deploy_delivery_policy(config.project, env, config.promotes_from(env), bucket, key_arn,
                                                 where))
    return render


def build(config: BootstrapConfig) -> CiBootstrap:
    ci = CiBootstrap("ci", config)
    # What ci/README.md tells you to copy into the repository's variables.
    pulumi.export("PULUMI_BACKEND_URL", ci.backend_url)
    pulumi.export("secrets_provider", ci.secrets_provider)
    pulumi.export("state_bucket", ci.state_bucket)
    pulumi.export("AWS_PREVIEW_ROLE_ARN", ci.preview_role_arn)
    pulumi.export("AWS_DEPLOY_ROLE_ARN", ci.deploy_role_arns)
    pulumi.export("oidc_provider_arn", ci.oidc_provider_arn)
    return ci
