"""One customer-managed KMS key per stack for data at rest (database, cache, secrets, alert topic, logs).

One key rather than one per layer: each key costs $1/month and the layers share one blast radius
(the stack) anyway. The key policy lets the services that encrypt on our behalf use it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.tags import with_name


@dataclass
class EncryptionArgs:
    name_prefix: str
    region: str
    tags: dict[str, str]


class Encryption(pulumi.ComponentResource):
    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:encryption:Encryption", name, None, opts)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self)).account_id
        policy = account.apply(lambda acct: json.dumps(_key_policy(acct, args.region, args.name_prefix)))
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.name_prefix}: data at rest",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy,
            tags=with_name(args.tags, f"{args.name_prefix}-data"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.name_prefix}-data",
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_arn = self.key.arn
        self.key_id = self.key.key_id
        self.register_outputs({"key_arn": self.key_arn})


def log_group_names(prefix: str) -> list[str]:
    """Every log group name the stack's layers create, as IAM patterns: the stack key is for these."""
    return [f"/{prefix}/*", f"/ecs/{prefix}/*", f"/aws/rds/instance/{prefix}-*", f"aws-waf-logs-{prefix}",
            f"aws-waf-logs-{prefix}-edge", f"/aws/cloudfront/{prefix}",
            f"/aws/lambda/{prefix}-*",
            f"/aws/events/{prefix}/*"]


def _key_policy(account: str, region: str, prefix: str) -> dict:
    root = f"arn:aws:iam::{account}:root"
    groups = [f"arn:aws:logs:{region}:{account}:log-group:{name}" for name in log_group_names(prefix)]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {  # IAM policies in this account decide who else may use the key.
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "kms:*",
                "Resource": "*",
            },
            {  # Only for this stack's log groups: no other group in the account can use the key.
                "Sid": "CloudWatchLogsEncrypts",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": groups}},
            },
            {  # Alarms publish to the encrypted alert topic.
                "Sid": "CloudWatchAlarmsPublish",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            },
        ],
    }
