"""Logs and audit: retention, encryption with the stack key, audit logs kept, access logs versioned."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any

from policy_support import (
    BUCKETS,
    LOAD_BALANCERS,
    LOG_GROUP,
    MANDATORY,
    Finding,
    Policy,
    PolicyResource,
    Stack,
    as_int,
    as_strings,
    environment_of,
    get,
    guarded,
    items,
    resource_policy,
    stack_policy,
    statements_of,
    true,
)
from pulumi_policy import ResourceValidationArgs

KMS_KEY = "aws:kms/key:Key"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
BUCKET_VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
BUCKET_LIFECYCLE = ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2")
LOGS_CONTEXT = "kms:EncryptionContext:aws:logs:arn"
PROD_AUDIT_DAYS = 365


def _log_retention(args: ResourceValidationArgs) -> Iterator[str]:
    days = as_int(args.props.get("retentionInDays"))
    if not days:
        yield (f"Log group '{args.name}' keeps logs forever (retentionInDays is not set). "
               "Set retention_in_days from the stack's monitoring.log_retention_days.")


def _log_kms(args: ResourceValidationArgs) -> Iterator[str]:
    if not args.props.get("kmsKeyId"):
        yield (f"Log group '{args.name}' is encrypted only with the CloudWatch Logs service key. "
               "Set kms_key_id to the stack KMS key.")


def _logs_statements(key_props: Mapping[str, Any]) -> list[Any]:
    """The key policy's statements that let CloudWatch Logs (logs.<region>.amazonaws.com) use the key."""
    return [s for s in statements_of(key_props.get("policy"))
            if get(s, "Effect") == "Allow"
            and any(p.startswith("logs.") for p in as_strings(get(s, "Principal", "Service")))]


def _context_patterns(statement: Any) -> list[str]:
    condition = get(statement, "Condition") or {}
    return [p for operator in ("ArnLike", "ArnEquals", "StringLike", "StringEquals")
            for p in as_strings(get(condition, operator, LOGS_CONTEXT))]


def _kms_logs_context(args: ResourceValidationArgs) -> Iterator[str]:
    for statement in _logs_statements(args.props):
        patterns = _context_patterns(statement)
        broad = [p for p in patterns if p.split(":log-group:", 1)[-1] in ("", "*") or ":log-group:" not in p]
        if not patterns or broad:
            shown = ", ".join(broad) if broad else "no kms:EncryptionContext:aws:logs:arn condition"
            yield (f"Key '{args.name}' lets CloudWatch Logs use it for any log group in the account ({shown}). "
                   "Condition the statement on ArnLike kms:EncryptionContext:aws:logs:arn with this stack's "
                   "log group ARNs.")


def _log_groups_use_their_stacks_key(stack: Stack) -> Iterator[Finding]:
    keys = stack.index([KMS_KEY], "arn", "id")

    def check(group: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        key_ref, name = props.get("kmsKeyId"), props.get("name")
        if not key_ref or not isinstance(name, str):
            return  # log-group-kms reports a group without a key
        key = keys.get(key_ref)
        if key is None:
            yield Finding(f"Log group '{group.name}' is encrypted with {key_ref}, which is not a key of this stack. "
                          "Set kms_key_id to the stack KMS key.", group.urn, environment_of(props))
            return
        arn = f"log-group:{name}"
        patterns = [p for s in _logs_statements(key.props) for p in _context_patterns(s)]
        if not any(fnmatch.fnmatchcase(arn, p.split(":", 5)[-1]) for p in patterns):
            yield Finding(f"Log group '{group.name}' ({name}) is not among the log groups the key '{key.name}' "
                          "serves, so CloudWatch Logs cannot encrypt it. Add its name to the key policy's "
                          "kms:EncryptionContext:aws:logs:arn patterns.", group.urn, environment_of(props))

    yield from guarded(check, stack.known(LOG_GROUP))


def _audit_retention(stack: Stack) -> Iterator[Finding]:
    """Prod: flow logs, WAF logs, database logs and the ALB's access logs kept a year or more."""
    groups = stack.index([LOG_GROUP], "arn", "name")
    audit: dict[str, tuple[PolicyResource, str]] = {}
    for _, arn in stack.collect([FLOW_LOG], lambda p: p.get("logDestination")):
        if arn in groups:
            audit[groups[arn].urn] = (groups[arn], "VPC flow logs")
    for _, arns in stack.collect([WAF_LOGGING], lambda p: list(items(p.get("logDestinationConfigs")))):
        for arn in arns:
            if arn in groups:
                audit[groups[arn].urn] = (groups[arn], "WAF logs")
    for group, name in stack.collect([LOG_GROUP], lambda p: p.get("name")):
        if isinstance(name, str) and name.startswith("/aws/rds/"):
            audit[group.urn] = (group, "database logs")
    for group, what in audit.values():
        props = group.props
        days = as_int(props.get("retentionInDays")) or 0
        if environment_of(props) == "prod" and days < PROD_AUDIT_DAYS:
            yield Finding(f"Prod log group '{group.name}' keeps {what} {days} days. Set "
                          f"monitoring.audit_log_retention_days to at least {PROD_AUDIT_DAYS}.",
                          group.urn, "prod")

    buckets = _access_log_buckets(stack)
    for rule_set, props in stack.collect(BUCKET_LIFECYCLE, lambda p: p):
        bucket = buckets.get(props.get("bucket"))
        if bucket is None or environment_of(bucket.props) != "prod":
            continue
        expiries = [as_int(get(r, "expiration", "days")) for r in items(props.get("rules"))
                    if get(r, "status") == "Enabled"]
        shortest = min((d for d in expiries if d is not None), default=None)
        if shortest is not None and shortest < PROD_AUDIT_DAYS:
            yield Finding(f"Prod access-log bucket '{bucket.name}' expires load balancer logs after {shortest} "
                          f"days. Set monitoring.audit_log_retention_days to at least {PROD_AUDIT_DAYS}.",
                          rule_set.urn, "prod")


def _access_log_buckets(stack: Stack) -> dict[Any, PolicyResource]:
    """Buckets the stack's load balancers write access logs to, by bucket name and id."""
    by_name = stack.index(list(BUCKETS), "bucket", "id")
    found: dict[Any, PolicyResource] = {}
    for _, name in stack.collect(LOAD_BALANCERS, lambda p: get(p, "accessLogs", "bucket")
                                 if true(get(p, "accessLogs", "enabled")) else None):
        bucket = by_name.get(name)
        if bucket is not None:
            for key in ("bucket", "id"):
                found[bucket.props.get(key)] = bucket
    return found


def _access_logs_versioned(stack: Stack) -> Iterator[Finding]:
    versioned = {bucket for _, (bucket, status) in stack.collect(
        BUCKET_VERSIONING, lambda p: (p.get("bucket"), get(p, "versioningConfiguration", "status")))
        if status == "Enabled"}
    seen: set[str] = set()
    for bucket in _access_log_buckets(stack).values():
        if bucket.urn in seen:
            continue
        seen.add(bucket.urn)
        if not {bucket.props.get("bucket"), bucket.props.get("id")} & versioned:
            yield Finding(f"Access-log bucket '{bucket.name}' is not versioned: a deleted or overwritten log is "
                          "gone. Add an aws.s3.BucketVersioning with status Enabled for it.",
                          bucket.urn, environment_of(bucket.props))


POLICIES: list[Policy] = [
    resource_policy("log-group-retention", "Every log group has a retention period.",
                    MANDATORY, [LOG_GROUP], _log_retention),
    resource_policy("log-group-kms", "Log groups are encrypted with a customer-managed KMS key.",
                    MANDATORY, [LOG_GROUP], _log_kms),
    stack_policy("log-group-stack-key",
                 "Log groups use a key of their own stack whose policy serves exactly their names.",
                 MANDATORY, _log_groups_use_their_stacks_key),
    resource_policy("kms-logs-encryption-context",
                    "A key CloudWatch Logs may use is limited to named log groups (kms:EncryptionContext:aws:logs:arn).",
                    MANDATORY, [KMS_KEY], _kms_logs_context),
    stack_policy("prod-audit-log-retention",
                 f"Prod keeps VPC flow, WAF, database and load balancer access logs >= {PROD_AUDIT_DAYS} days.",
                 MANDATORY, _audit_retention),
    stack_policy("access-log-bucket-versioned", "The load balancer's access-log bucket is versioned.",
                 MANDATORY, _access_logs_versioned),
]
