"""The bootstrap's IAM and key policy documents: pure functions, tested without Pulumi.

Who may do what (env E, name N = `<project>-<E>`, one account may hold several environments):

- deploy role of E: creates and changes only the resources of stack E. Resources with names carry
  N in their ARN; resources with generated ids (EC2, ACM, Application Auto Scaling, the stack's KMS
  key) carry the tag `stack=E`, which is set at creation and can be neither removed nor changed
  afterwards, so no role can move a resource from one environment to another by re-tagging it.
  Every role it creates or edits must carry E's permissions boundary (`iam:PermissionsBoundary`),
  which it cannot remove, replace or edit; it cannot touch the CI roles or its own trust policy.
- preview role of E: reads configuration and E's state, decrypts only E's state and secrets, and
  writes nothing (no lock: `pulumi preview` and `refresh --preview-only` take none in the DIY backend).
- promotion source of E: reads E's ledger and pulls E's images, for the next environment's deploy role.

Condition keys used here exist for these actions in the Service Authorization Reference; the
suite checks every one of them with parliament (`UNKNOWN_CONDITION_FOR_ACTION`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Document = dict[str, Any]
Statement = dict[str, Any]

STS_AUDIENCE = "sts.amazonaws.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# Services a deploy role may pass its stack's roles to: ECS tasks (execution/task roles), VPC flow
# logs, RDS enhanced monitoring, Lambda functions, ECS itself (the role a lifecycle hook runs as),
# Firehose (the event stream's delivery role) and AppConfig (the role that reads the flag monitor).
PASSABLE_TO = ["ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com", "monitoring.rds.amazonaws.com",
               "lambda.amazonaws.com", "ecs.amazonaws.com", "firehose.amazonaws.com", "appconfig.amazonaws.com"]
# AWS managed policies a stack role may have attached: nothing else can be (iam:PolicyARN).
ATTACHABLE = ["arn:{p}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"]
# Service-linked roles the stack's services create on first use in an account.
SERVICE_LINKED = ["ecs.amazonaws.com", "elasticache.amazonaws.com", "rds.amazonaws.com",
                  "elasticloadbalancing.amazonaws.com", "ecs.application-autoscaling.amazonaws.com",
                  "wafv2.amazonaws.com", "vpcorigin.cloudfront.amazonaws.com"]
# The tag that says which stack a resource belongs to; the bootstrap's own keys carry this value,
# which no environment may be named (so no deploy role ever matches them).
STACK_TAG = "stack"
BOOTSTRAP_STACK = "ci-bootstrap"
# Tags a deploy role may never remove or rewrite once a resource carries them.
OWNERSHIP_TAGS = [STACK_TAG, "project"]


@dataclass(frozen=True)
class Account:
    account: str
    region: str
    partition: str


@dataclass(frozen=True)
class Names:
    """Every name and ARN the documents of one environment refer to."""

    project: str
    env: str
    where: Account
    bucket: str
    state_key_arn: str
    secrets_key_arn: str
    lock_table: str
    ledger_table: str

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.env}"

    def arn(self, service: str, resource: str, *, region: str | None = None, account: str | None = None) -> str:
        w = self.where
        return f"arn:{w.partition}:{service}:{w.region if region is None else region}:" \
               f"{w.account if account is None else account}:{resource}"

    def iam(self, resource: str) -> str:
        return f"arn:{self.where.partition}:iam::{self.where.account}:{resource}"

    @property
    def boundary_arn(self) -> str:
        return self.iam(f"policy/{boundary_name(self.project, self.env)}")

    def table_arns(self) -> list[str]:
        return [self.arn("dynamodb", f"table/{t}") for t in (self.lock_table, self.ledger_table)]

    def state_objects(self) -> list[str]:
        """The DIY backend's files of stack E (project layout, `.pulumi/meta.yaml` version 1)."""
        p, e, b = self.project, self.env, self.bucket
        s3 = f"arn:{self.where.partition}:s3:::{b}/.pulumi"
        return [f"{s3}/stacks/{p}/{e}.json*", f"{s3}/history/{p}/{e}/*", f"{s3}/backups/{p}/{e}/*",
                f"{s3}/journal/{p}/{e}/*", f"{s3}/locks/organization/{p}/{e}/*"]

    @property
    def meta_object(self) -> str:
        return f"arn:{self.where.partition}:s3:::{self.bucket}/.pulumi/meta.yaml"


def boundary_name(project: str, env: str) -> str:
    """`<project>-<env>-boundary`: the name the stacks' roles reference (infra/aws/identity.py)."""
    return f"{project}-{env}-boundary"


def promotion_source_name(project: str, env: str) -> str:
    return f"{project}-{env}-promotion-source"


def _doc(*statements: Statement) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _region(n: Names) -> dict[str, Any]:
    return {"StringEquals": {"aws:RequestedRegion": n.where.region}}


def _owned(n: Names) -> dict[str, str]:
    return {f"aws:ResourceTag/{STACK_TAG}": n.env}


def _tagged_at_creation(n: Names) -> dict[str, str]:
    return {f"aws:RequestTag/{STACK_TAG}": n.env}


# --- trust ---------------------------------------------------------------------------------------

def github_trust(provider_arn: str, subjects: Sequence[str]) -> Document:
    """Only tokens for this audience and exactly these subjects (no wildcards) may assume the role."""
    return _doc({
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
            f"{GITHUB_OIDC_HOST}:sub": list(subjects),
        }},
    })


def deploy_subject(repository: str, env: str) -> str:
    return f"repo:{repository}:environment:{env}"


def preview_subjects(repository: str, default_branch: str) -> list[str]:
    # Pull requests of this repository (forks get no token) and scheduled runs on the default branch.
    return [f"repo:{repository}:pull_request", f"repo:{repository}:ref:refs/heads/{default_branch}"]


def promotion_trust(readers: Sequence[str]) -> Document:
    return _doc({"Effect": "Allow", "Principal": {"AWS": sorted(readers)}, "Action": "sts:AssumeRole"})


# --- state, tables, keys -------------------------------------------------------------------------

def _state_read(n: Names) -> list[Statement]:
    return [
        {"Sid": "StateList", "Effect": "Allow", "Action": "s3:ListBucket",
         "Resource": f"arn:{n.where.partition}:s3:::{n.bucket}",
         "Condition": {"StringLike": {"s3:prefix": [".pulumi/*"]}}},
        {"Sid": "StateBucketLocation", "Effect": "Allow", "Action": "s3:GetBucketLocation",
         "Resource": f"arn:{n.where.partition}:s3:::{n.bucket}"},
        {"Sid": "StateRead", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": [n.meta_object, *n.state_objects()]},
    ]


def _state_key(n: Names, actions: list[str]) -> Statement:
    # No bucket key on the state bucket: each object is encrypted under its own ARN, so a role
    # decrypts only the objects of its environment even though the bucket has one key.
    return {"Sid": "StateKeyViaS3", "Effect": "Allow", "Action": actions, "Resource": n.state_key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{n.where.region}.amazonaws.com"},
                          "StringLike": {"kms:EncryptionContext:aws:s3:arn": [n.meta_object, *n.state_objects()]}}}


def _secrets_key(n: Names, actions: list[str]) -> Statement:
    # The stack's `awskms://` secrets provider: Pulumi calls KMS directly, not through a service.
    return {"Sid": "StackSecretsKey", "Effect": "Allow", "Action": actions, "Resource": n.secrets_key_arn}


def _tables_key(n: Names, actions: list[str]) -> list[Statement]:
    via = {"kms:ViaService": f"dynamodb.{n.where.region}.amazonaws.com"}
    return [
        {"Sid": "TablesKeyViaDynamoDB", "Effect": "Allow", "Action": actions, "Resource": n.state_key_arn,
         "Condition": {"StringEquals": via, "ForAnyValue:StringEquals": {
             "kms:EncryptionContext:aws:dynamodb:tableName": [n.lock_table, n.ledger_table]}}},
        {"Sid": "TablesKeyDescribe", "Effect": "Allow", "Action": "kms:DescribeKey", "Resource": n.state_key_arn,
         "Condition": {"StringEquals": via}},
    ]


def _items_of(env: str) -> dict[str, Any]:
    return {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [env]}}


TABLE_WRITE = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
               "dynamodb:Query", "dynamodb:ConditionCheckItem"]
ECR_PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability",
            "ecr:DescribeImages"]


def deploy_delivery_policy(n: Names) -> Document:
    """What the Invoke delivery tasks do beside `up`: state, lock and ledger, promotion."""
    p = n.where.partition
    return _doc(
        *_state_read(n),
        {"Sid": "StateWrite", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"],
         "Resource": n.state_objects()},
        _state_key(n, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]),
        _secrets_key(n, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]),
        {"Sid": "LockAndLedger", "Effect": "Allow", "Action": TABLE_WRITE, "Resource": n.table_arns(),
         "Condition": _items_of(n.env)},
        *_tables_key(n, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]),
        # Promotion reads the source environment's ledger and images through that environment's
        # promotion-source role (maybe in another account), which trusts only the next deploy role.
        {"Sid": "AssumePromotionSources", "Effect": "Allow", "Action": "sts:AssumeRole",
         "Resource": f"arn:{p}:iam::*:role/{promotion_source_name(n.project, '*')}"},
    )


def preview_policy(n: Names) -> Document:
    """Read-only: `pulumi preview` and `pulumi refresh --preview-only` of stack E, nothing written.

    Reads of configuration, never of data: no GetSecretValue, no S3 objects outside E's state,
    no log events, no item of another environment.
    """
    p, name = n.where.partition, n.prefix
    return _doc(
        *_state_read(n),
        _state_key(n, ["kms:Decrypt"]),
        _secrets_key(n, ["kms:Decrypt", "kms:DescribeKey"]),
        {"Sid": "ReadLedger", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"],
         "Resource": n.arn("dynamodb", f"table/{n.ledger_table}"), "Condition": _items_of(n.env)},
        {"Sid": "ReadLock", "Effect": "Allow", "Action": "dynamodb:GetItem",
         "Resource": n.arn("dynamodb", f"table/{n.lock_table}"), "Condition": _items_of(n.env)},
        *_tables_key(n, ["kms:Decrypt"]),
        {"Sid": "DescribeRegional", "Effect": "Allow", "Resource": "*", "Condition": _region(n), "Action": [
            "ec2:Describe*", "elasticloadbalancing:Describe*", "ecs:Describe*", "ecs:List*", "ecr:Describe*",
            "ecr:List*", "ecr:GetLifecyclePolicy", "ecr:GetRepositoryPolicy", "rds:Describe*",
            "rds:ListTagsForResource", "elasticache:Describe*", "elasticache:ListTagsForResource", "logs:Describe*",
            "logs:ListTagsForResource", "logs:ListTagsLogGroup", "logs:GetLogDelivery", "cloudwatch:Describe*",
            "cloudwatch:List*", "cloudwatch:GetDashboard", "sns:GetTopicAttributes", "sns:GetSubscriptionAttributes",
            "sns:List*", "kms:DescribeKey", "kms:List*", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus",
            "secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy", "secretsmanager:List*",
            "wafv2:Get*", "wafv2:List*", "acm:Describe*", "acm:List*", "application-autoscaling:Describe*",
            "application-autoscaling:ListTagsForResource", "lambda:GetFunction", "lambda:ListTags",
            "lambda:GetPolicy"]},
        # S3 bucket configuration (what refresh compares), not objects.
        {"Sid": "DescribeBuckets", "Effect": "Allow", "Resource": f"arn:{p}:s3:::{name}-*", "Action": [
            "s3:GetBucket*", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration",
            "s3:GetAccelerateConfiguration", "s3:GetReplicationConfiguration"]},
        {"Sid": "DescribeRoles", "Effect": "Allow", "Resource": n.iam(f"role/{name}-*"),
         "Action": ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"]},
        {"Sid": "DescribeGlobal", "Effect": "Allow", "Resource": "*",
         "Action": ["iam:GetOpenIDConnectProvider", "route53:GetHostedZone", "route53:ListHostedZones",
                    "route53:ListResourceRecordSets"]},
    )


def promotion_source_policy(n: Names) -> Document:
    """C1: read E's ledger items and pull E's images; nothing else."""
    repos = [n.arn("ecr", f"repository/{n.prefix}/*"), n.arn("ecr", f"repository/{n.prefix}-*")]
    return _doc(
        {"Sid": "ReadLedger", "Effect": "Allow", "Action": ["dynamodb:Query", "dynamodb:GetItem"],
         "Resource": n.arn("dynamodb", f"table/{n.ledger_table}"), "Condition": _items_of(n.env)},
        *_tables_key(n, ["kms:Decrypt"]),
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "PullImages", "Effect": "Allow", "Action": ECR_PULL, "Resource": repos},
    )


def key_policy(account: str, partition: str) -> Document:
    # Account-administered: the roles' IAM policies above decide who uses the key.
    return _doc({"Sid": "AccountAdministers", "Effect": "Allow",
                 "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"})


def tls_only_policy(bucket_arn: str) -> Document:
    return _doc({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [bucket_arn, f"{bucket_arn}/*"],
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
