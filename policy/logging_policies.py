"""Logs and audit: retention, encryption with the stack key."""

from __future__ import annotations

from collections.abc import Iterator

from policy_support import (
    ADVISORY,
    LOG_GROUP,
    MANDATORY,
    Policy,
    as_int,
    resource_policy,
)
from pulumi_policy import ResourceValidationArgs


def _log_retention(args: ResourceValidationArgs) -> Iterator[str]:
    days = as_int(args.props.get("retentionInDays"))
    if not days:
        yield (f"Log group '{args.name}' keeps logs forever (retentionInDays is not set). "
               "Set retention_in_days from the stack's monitoring.log_retention_days.")


def _log_kms(args: ResourceValidationArgs) -> Iterator[str]:
    if not args.props.get("kmsKeyId"):
        yield (f"Log group '{args.name}' is encrypted only with the CloudWatch Logs service key. "
               "Set kms_key_id to the stack KMS key if its events may carry sensitive data.")


POLICIES: list[Policy] = [
    resource_policy("log-group-retention", "Every log group has a retention period.",
                    MANDATORY, [LOG_GROUP], _log_retention),
    resource_policy("log-group-kms", "Log groups are encrypted with a customer-managed KMS key.",
                    ADVISORY, [LOG_GROUP], _log_kms),
]
