"""The IAM and ECR policy documents of the services layer: pure functions, unit-testable without a synth."""

from __future__ import annotations

import re
from typing import Any

UNTAGGED_EXPIRY_DAYS = 7
KEEP_IMAGES = 30
XRAY_ACTIONS = [
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
]
ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
PRIVATE_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repo>[^:@]+)"
)


def secret_arn(reference: str) -> str:
    """The secret's own ARN from an ECS `valueFrom` that may end in `:json-key:stage:version`."""
    return ":".join(reference.split(":")[:7])


def ecr_repository_arn(image: str, partition: str) -> str | None:
    """The private ECR repository an image reference pulls from, if it is one."""
    match = PRIVATE_ECR_IMAGE.match(image)
    if not match:
        return None
    return f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}"


def trust_policy(account: str, partition: str, region: str) -> dict[str, Any]:
    # The conditions stop another account's ECS from assuming the role (confused deputy).
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:ecs:{region}:{account}:*"},
            },
        }],
    }


def execution_policy(*, pull_repository_arns: list[str], log_group_arn: str, secret_arns: list[str],
                     account: str, partition: str, region: str) -> dict[str, Any]:
    """What ECS needs to start this service's tasks, and nothing another service needs."""
    statements: list[dict[str, Any]] = []
    if pull_repository_arns:
        statements += [
            # GetAuthorizationToken has no resource-level permissions: "*" is the only form.
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {"Sid": "PullOwnImage", "Effect": "Allow", "Action": ECR_PULL_ACTIONS,
             "Resource": sorted(pull_repository_arns)},
        ]
    statements.append({"Sid": "WriteOwnLogs", "Effect": "Allow",
                       "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                       "Resource": f"{log_group_arn}:*"})
    if secret_arns:
        secrets = sorted(set(secret_arns))
        statements += [
            {"Sid": "ReadOwnSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": secrets},
            # Secrets under a customer-managed key also need Decrypt; only through Secrets
            # Manager and only for these secrets (Secrets Manager puts the secret's ARN in the
            # encryption context), so the role cannot decrypt anything else with any key.
            {"Sid": "DecryptOwnSecrets", "Effect": "Allow", "Action": "kms:Decrypt",
             "Resource": f"arn:{partition}:kms:{region}:{account}:key/*",
             "Condition": {
                 "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"},
                 "ForAnyValue:StringEquals": {"kms:EncryptionContext:SecretARN": secrets},
             }},
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def data_access_policy(*, db_user_arn: str | None, cache_arns: list[str]) -> dict[str, Any]:
    """C2: log in to the database as the application's role and to the cache as its user, by IAM."""
    statements: list[dict[str, Any]] = []
    if db_user_arn:
        statements.append({"Sid": "DatabaseLogin", "Effect": "Allow", "Action": "rds-db:connect",
                           "Resource": db_user_arn})
    if cache_arns:
        statements.append({"Sid": "CacheLogin", "Effect": "Allow", "Action": "elasticache:Connect",
                           "Resource": sorted(cache_arns)})
    return {"Version": "2012-10-17", "Statement": statements}


def put_events_policy(stream_arn: str) -> dict[str, Any]:
    """Product events: put on this stack's delivery stream only, never another stream."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "PutOwnStackEvents", "Effect": "Allow",
        "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"], "Resource": stream_arn}]}


def tracing_policy() -> dict[str, Any]:
    # X-Ray has no resource-level permissions for these actions.
    return {"Version": "2012-10-17",
            "Statement": [{"Sid": "XRayWrite", "Effect": "Allow", "Action": XRAY_ACTIONS, "Resource": "*"}]}


def lifecycle_policy() -> dict[str, Any]:
    return {"rules": [
        {"rulePriority": 1, "description": f"expire untagged images after {UNTAGGED_EXPIRY_DAYS} days",
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                       "countNumber": UNTAGGED_EXPIRY_DAYS},
         "action": {"type": "expire"}},
        # An `any` rule must have the highest priority number; it keeps rollback targets around.
        {"rulePriority": 2, "description": f"keep the last {KEEP_IMAGES} images",
         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES},
         "action": {"type": "expire"}},
    ]}


APPCONFIG_READ_ACTIONS = ["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"]


def flags_read_policy(configuration_arn: str) -> dict[str, Any]:
    """The AppConfig agent's reads: the stack's own feature-flag profile in its own environment only."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "ReadOwnFlags", "Effect": "Allow", "Action": APPCONFIG_READ_ACTIONS, "Resource": configuration_arn}]}
