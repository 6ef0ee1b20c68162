"""Product analytics: the event stream encrypted with a customer key, and Athena workgroups that
enforce their own encrypted results and a per-query scan limit (a client cannot opt out of either)."""

from __future__ import annotations

from collections.abc import Iterator

from policy_support import ADVISORY, MANDATORY, get, label_of, resource_policy
from pulumi_policy import ResourceValidationArgs

FIREHOSE = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
WORKGROUP = "aws:athena/workgroup:Workgroup"
ENCRYPTED_RESULTS = ("SSE_S3", "SSE_KMS", "CSE_KMS")


def _firehose_sse(args: ResourceValidationArgs) -> Iterator[str]:
    sse = args.props.get("serverSideEncryption") or {}
    if get(sse, "enabled") is not True:
        yield (f"{label_of(args)} keeps records unencrypted while it buffers them. Set server_side_encryption "
               "enabled with key_type CUSTOMER_MANAGED_CMK and the stack key (infra/aws/analytics.py does).")
    elif get(sse, "keyType") != "CUSTOMER_MANAGED_CMK" or not get(sse, "keyArn"):
        yield (f"{label_of(args)} encrypts with an AWS-owned key, outside the stack key's policy and audit trail. "
               "Set key_type CUSTOMER_MANAGED_CMK and key_arn to the stack key.")


def _workgroup_enforced(args: ResourceValidationArgs) -> Iterator[str]:
    conf = args.props.get("configuration") or {}
    if get(conf, "enforceWorkgroupConfiguration") is not True:
        yield (f"{label_of(args)} lets each query choose its own result location and encryption. Set "
               "configuration.enforce_workgroup_configuration to true.")
    option = get(conf, "resultConfiguration", "encryptionConfiguration", "encryptionOption")
    if option not in ENCRYPTED_RESULTS:
        yield (f"{label_of(args)} writes query results unencrypted. Set result_configuration."
               "encryption_configuration.encryption_option to SSE_KMS with the stack key.")


def _workgroup_scan_limit(args: ResourceValidationArgs) -> Iterator[str]:
    if not get(args.props.get("configuration") or {}, "bytesScannedCutoffPerQuery"):
        yield (f"{label_of(args)} has no per-query scan limit: one query without a partition filter can scan (and "
               "bill) the whole bucket. Set bytes_scanned_cutoff_per_query (analytics.query_scan_limit_mb).")


POLICIES = [
    resource_policy("firehose-sse-cmk", "Firehose streams encrypt buffered records with a customer-managed key.",
                    MANDATORY, [FIREHOSE], _firehose_sse),
    resource_policy("athena-workgroup-enforced", "Athena workgroups enforce their configuration and encrypt "
                    "results.", MANDATORY, [WORKGROUP], _workgroup_enforced),
    resource_policy("athena-scan-limit-advisory", "Athena workgroups cap the bytes one query may scan.",
                    ADVISORY, [WORKGROUP], _workgroup_scan_limit),
]
