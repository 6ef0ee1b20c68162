"""Encryption at rest and in transit: RDS, ElastiCache, S3, SNS, EBS, TLS to PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policy_support import (
    BUCKET_SSE,
    BUCKETS,
    CACHE_CLUSTER,
    CACHE_GROUP,
    EBS_VOLUME,
    EC2_INSTANCE,
    MANDATORY,
    RDS_CLUSTER,
    RDS_CLUSTER_PARAMETER_GROUP,
    RDS_INSTANCE,
    RDS_PARAMETER_GROUP,
    SNS_TOPIC,
    Finding,
    Policy,
    Stack,
    environment_of,
    get,
    guarded,
    items,
    resource_policy,
    stack_policy,
    true,
)
from pulumi_policy import PolicyResource, ResourceValidationArgs


def _rds_encrypted(args: ResourceValidationArgs) -> Iterator[str]:
    if not true(args.props.get("storageEncrypted")):
        yield (f"Database '{args.name}' stores data unencrypted (storageEncrypted is not true). "
               "Set storage_encrypted=True with kms_key_id set to the stack KMS key.")


def _cache_at_rest(args: ResourceValidationArgs) -> Iterator[str]:
    props = args.props
    if args.resource_type == CACHE_CLUSTER:
        if not props.get("replicationGroupId") and props.get("engine") != "memcached":
            yield (f"Cache cluster '{args.name}' is a standalone node, which ElastiCache cannot encrypt at rest. "
                   "Use an aws.elasticache.ReplicationGroup with at_rest_encryption_enabled=True.")
        return
    if not true(props.get("atRestEncryptionEnabled")):
        yield (f"Cache '{args.name}' stores data unencrypted (atRestEncryptionEnabled is not true). "
               "Set at_rest_encryption_enabled=True and kms_key_id to the stack KMS key.")


def _cache_in_transit(args: ResourceValidationArgs) -> Iterator[str]:
    if args.resource_type == CACHE_CLUSTER and args.props.get("replicationGroupId"):
        return  # a member of a replication group inherits the group's setting
    if not true(args.props.get("transitEncryptionEnabled")):
        yield (f"Cache '{args.name}' accepts plaintext connections (transitEncryptionEnabled is not true). "
               "Set transit_encryption_enabled=True and have clients connect with TLS.")


def _sns_encrypted(args: ResourceValidationArgs) -> Iterator[str]:
    if not args.props.get("kmsMasterKeyId"):
        yield (f"Topic '{args.name}' stores messages unencrypted (no kmsMasterKeyId). "
               "Set kms_master_key_id to the stack KMS key.")


def _ebs_encrypted(args: ResourceValidationArgs) -> Iterator[str]:
    props = args.props
    if args.resource_type == EBS_VOLUME:
        if not true(props.get("encrypted")):
            yield f"Volume '{args.name}' is not encrypted. Set encrypted=True."
        return
    if not true(get(props, "rootBlockDevice", "encrypted")):
        yield (f"Instance '{args.name}' has an unencrypted (or account-default) root volume. "
               "Set root_block_device.encrypted=True.")
    for device in items(props.get("ebsBlockDevices")):
        if not true(get(device, "encrypted")):
            yield (f"Instance '{args.name}' attaches unencrypted volume {get(device, 'deviceName')}. "
                   "Set encrypted=True on every ebs_block_devices entry.")


def _buckets_encrypted(stack: Stack) -> Iterator[Finding]:
    def encrypted_bucket(props: Mapping[str, Any]) -> Any:
        algorithms = [get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
                      for rule in items(props.get("rules"))]
        return props.get("bucket") if any(algorithms) else None

    configured = {bucket for _, bucket in stack.collect(BUCKET_SSE, encrypted_bucket) if isinstance(bucket, str)}

    def check(bucket: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        names = {props.get("id"), props.get("bucket")} - {None}
        inline = get(props, "serverSideEncryptionConfiguration", "rule", "applyServerSideEncryptionByDefault",
                      "sseAlgorithm")
        if not names & configured and not inline:
            yield Finding(f"Bucket '{bucket.name}' has no server-side encryption configuration. "
                          "Add an aws.s3.BucketServerSideEncryptionConfiguration for it (aws:kms, or AES256 "
                          "where the writing service cannot use KMS).", bucket.urn, environment_of(props))

    yield from guarded(check, stack.known(*BUCKETS))


def _force_ssl(stack: Stack) -> Iterator[Finding]:
    groups = stack.index([RDS_PARAMETER_GROUP, RDS_CLUSTER_PARAMETER_GROUP], "name", "id")

    def forced(group: PolicyResource) -> bool:
        return any(get(p, "name") == "rds.force_ssl" and str(get(p, "value")) == "1"
                   for p in items(group.props.get("parameters")))

    def check(db: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        engine = str(props.get("engine") or "")
        if "postgres" not in engine:
            return
        key = "dbClusterParameterGroupName" if db.resource_type == RDS_CLUSTER else "parameterGroupName"
        group_name = props.get(key)
        group = groups.get(group_name) if isinstance(group_name, str) else None
        if group is None:
            problem = (f"uses parameter group {group_name!r}, which this stack does not define" if group_name
                       else "uses the engine's default parameter group")
            yield Finding(f"PostgreSQL database '{db.name}' {problem}, so TLS cannot be shown to be required. "
                          "Give it a parameter group of this stack that sets rds.force_ssl=1.",
                          db.urn, environment_of(props))
        elif not forced(group):
            yield Finding(f"PostgreSQL database '{db.name}' accepts plaintext connections: parameter group "
                          f"'{group.name}' does not set rds.force_ssl=1. Add the parameter rds.force_ssl=1 "
                          "(apply_method immediate) to that group.", db.urn, environment_of(props))

    yield from guarded(check, stack.known(RDS_INSTANCE, RDS_CLUSTER))


POLICIES: list[Policy] = [
    resource_policy("rds-encrypted-at-rest", "RDS storage is encrypted at rest.",
                    MANDATORY, [RDS_INSTANCE, RDS_CLUSTER], _rds_encrypted),
    resource_policy("cache-encrypted-at-rest", "ElastiCache data is encrypted at rest.",
                    MANDATORY, [CACHE_GROUP, CACHE_CLUSTER], _cache_at_rest),
    resource_policy("cache-encrypted-in-transit", "ElastiCache accepts TLS connections only.",
                    MANDATORY, [CACHE_GROUP, CACHE_CLUSTER], _cache_in_transit),
    stack_policy("s3-bucket-encrypted", "Every S3 bucket has a server-side encryption configuration.",
                 MANDATORY, _buckets_encrypted),
    resource_policy("sns-topic-encrypted", "SNS topics are encrypted with a KMS key.",
                    MANDATORY, [SNS_TOPIC], _sns_encrypted),
    resource_policy("ebs-encrypted", "EC2 instance and EBS volumes are encrypted.",
                    MANDATORY, [EC2_INSTANCE, EBS_VOLUME], _ebs_encrypted),
    stack_policy("rds-force-ssl", "Every PostgreSQL database requires TLS (rds.force_ssl=1).",
                 MANDATORY, _force_ssl),
]
