"""Product analytics: the service's events through Firehose to Parquet in S3, a Glue table, Athena.

Firehose converts the JSON records to Parquet through the Glue table's schema and writes them
under `events/dt=YYYY-MM-DD/`; the table projects that partition (no crawler, no MSCK REPAIR).
One bucket holds the data, Firehose's failed records and Athena's results, each under its own
prefix with its own lifecycle, all under the stack key. The readers' role is not the service's:
the task role may only put records on this stack's stream (infra/aws/services.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.analytics_queries import EVENT_COLUMNS, named_queries
from infra.config import naming
from infra.config.analytics import AnalyticsConfig
from infra.tags import with_name

DATA_PREFIX = "events/"
ERROR_PREFIX = "errors/"
RESULTS_PREFIX = "athena-results/"
PARTITION = "dt"  # yyyy-MM-dd, the UTC day Firehose received the record
PROJECTION_START = "2026-01-01"
RESULTS_EXPIRY_DAYS = 30
ERRORS_EXPIRY_DAYS = 30
NONCURRENT_DAYS = 7
TABLE = "product_events"
# Joda pattern of `occurred_at` as the service writes it (products.events.occurred_at).
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
PARQUET = {
    "serde": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    "input": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "output": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
}


@dataclass
class AnalyticsArgs:
    config: AnalyticsConfig
    name_prefix: str
    region: str
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    force_destroy: bool
    tags: dict[str, str]
    permissions_boundary_arn: pulumi.Input[str] | None = None


class Analytics(pulumi.ComponentResource):
    stream_name: pulumi.Output[str]
    stream_arn: pulumi.Output[str]
    bucket_name: pulumi.Output[str]
    workgroup_name: pulumi.Output[str]
    database_name: pulumi.Output[str]
    reader_role_arn: pulumi.Output[str]
    buffer_seconds: int
    events: list[str]

    def __init__(self, name: str, args: AnalyticsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:analytics:Analytics", name, None, opts)
        prefix, cfg = args.name_prefix, args.config
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition

        bucket = self._bucket(name, args, account)
        bucket_arn = bucket.arn

        database = aws.glue.CatalogDatabase(
            f"{name}-database", name=naming.analytics_database(prefix),
            description=f"{prefix}: product events (the service's own, no personal data)",
            tags=with_name(args.tags, naming.analytics_database(prefix)), opts=child)
        location = pulumi.Output.concat("s3://", bucket.bucket, "/", DATA_PREFIX)
        table = aws.glue.CatalogTable(
            f"{name}-table", name=TABLE, database_name=database.name, table_type="EXTERNAL_TABLE",
            description="Product events, one row per event; partition dt is the UTC day of arrival",
            parameters=location.apply(lambda loc: {
                "classification": "parquet",
                "EXTERNAL": "TRUE",
                "parquet.compression": "SNAPPY",
                # Partition projection: Athena computes the partitions, nothing has to register them.
                "projection.enabled": "true",
                f"projection.{PARTITION}.type": "date",
                f"projection.{PARTITION}.format": "yyyy-MM-dd",
                f"projection.{PARTITION}.range": f"{PROJECTION_START},NOW",
                f"projection.{PARTITION}.interval": "1",
                f"projection.{PARTITION}.interval.unit": "DAYS",
                "storage.location.template": f"{loc}{PARTITION}=${{{PARTITION}}}/",
            }),
            partition_keys=[aws.glue.CatalogTablePartitionKeyArgs(name=PARTITION, type="string")],
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=location, input_format=PARQUET["input"], output_format=PARQUET["output"],
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    name="parquet", serialization_library=PARQUET["serde"],
                    parameters={"serialization.format": "1"}),
                columns=[aws.glue.CatalogTableStorageDescriptorColumnArgs(name=col, type=typ, comment=comment)
                         for col, typ, comment in EVENT_COLUMNS],
            ),
            opts=child)

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-firehose-logs", name=f"/{prefix}/firehose/{naming.analytics_stream(prefix)}",
            retention_in_days=args.log_retention_days, kms_key_id=args.kms_key_arn,
            tags=with_name(args.tags, f"/{prefix}/firehose/{naming.analytics_stream(prefix)}"), opts=child)
        log_stream = aws.cloudwatch.LogStream(
            f"{name}-firehose-delivery-log", name="DestinationDelivery", log_group_name=log_group.name, opts=child)

        catalog = pulumi.Output.all(partition, account).apply(
            lambda v: f"arn:{v[0]}:glue:{args.region}:{v[1]}")
        role = self._role(name, args, account, "firehose", "firehose.amazonaws.com",
                          f"Firehose delivers {naming.analytics_stream(prefix)} to the analytics bucket")
        delivery_policy = aws.iam.RolePolicy(
            f"{name}-firehose-policy", role=role.id, name="deliver-events",
            policy=pulumi.Output.all(bucket_arn, catalog, database.name, args.kms_key_arn, log_group.arn).apply(
                lambda v: json.dumps(delivery_policy_document(
                    bucket_arn=v[0], catalog_arn=v[1], database=v[2], table=TABLE, key_arn=v[3],
                    log_group_arn=v[4], region=args.region))),
            opts=child)

        self.stream = aws.kinesis.FirehoseDeliveryStream(
            f"{name}-stream", name=naming.analytics_stream(prefix), destination="extended_s3",
            server_side_encryption=aws.kinesis.FirehoseDeliveryStreamServerSideEncryptionArgs(
                enabled=True, key_type="CUSTOMER_MANAGED_CMK", key_arn=args.kms_key_arn),
            extended_s3_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationArgs(
                bucket_arn=bucket_arn, role_arn=role.arn, kms_key_arn=args.kms_key_arn,
                buffering_interval=cfg.buffer_seconds, buffering_size=cfg.buffer_mb,
                prefix=f"{DATA_PREFIX}{PARTITION}=!{{timestamp:yyyy-MM-dd}}/",
                error_output_prefix=f"{ERROR_PREFIX}!{{firehose:error-output-type}}/{PARTITION}=!{{timestamp:yyyy-MM-dd}}/",
                cloudwatch_logging_options=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationCloudwatchLoggingOptionsArgs(
                    enabled=True, log_group_name=log_group.name, log_stream_name=log_stream.name),
                data_format_conversion_configuration=_conversion(database.name, table.name, role.arn),
            ),
            tags=with_name(args.tags, naming.analytics_stream(prefix)),
            # Firehose checks its role's permissions when the stream is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[delivery_policy]))

        self.workgroup = aws.athena.Workgroup(
            f"{name}-workgroup", name=naming.analytics_workgroup(prefix),
            description=f"{prefix}: product analytics, {cfg.query_scan_limit_mb} MB scanned per query at most",
            force_destroy=args.force_destroy,
            configuration=aws.athena.WorkgroupConfigurationArgs(
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=cfg.query_scan_limit_mb * 1024 * 1024,
                result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                    output_location=pulumi.Output.concat("s3://", bucket.bucket, "/", RESULTS_PREFIX),
                    encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                        encryption_option="SSE_KMS", kms_key_arn=args.kms_key_arn),
                ),
            ),
            tags=with_name(args.tags, naming.analytics_workgroup(prefix)), opts=child)
        for query_name, (description, sql) in named_queries(naming.analytics_database(prefix), TABLE).items():
            aws.athena.NamedQuery(
                f"{name}-query-{query_name}", name=query_name, description=description, query=sql,
                database=database.name, workgroup=self.workgroup.name, opts=child)

        reader = self._reader_role(name, args, account, bucket_arn, catalog, database.name)

        self.buffer_seconds, self.events = cfg.buffer_seconds, list(cfg.events)
        self.stream_name = self.stream.name
        self.stream_arn = self.stream.arn
        self.bucket_name = bucket.bucket
        self.workgroup_name = self.workgroup.name
        self.database_name = database.name
        self.reader_role_arn = reader.arn
        self.register_outputs({"stream_name": self.stream_name, "bucket_name": self.bucket_name,
                               "workgroup_name": self.workgroup_name, "reader_role_arn": self.reader_role_arn})

    # ---- the bucket -----------------------------------------------------------------------------

    def _bucket(self, name: str, args: AnalyticsArgs, account: pulumi.Output[str]) -> aws.s3.Bucket:
        prefix, cfg = args.name_prefix, args.config
        child = pulumi.ResourceOptions(parent=self)
        # Account and region make it globally unique (checked by the schema, infra/config/naming.py).
        bucket = aws.s3.Bucket(
            f"{name}-bucket", bucket=account.apply(lambda acct: naming.analytics_bucket(prefix, acct, args.region)),
            force_destroy=args.force_destroy, tags=with_name(args.tags, f"{prefix}-events"), opts=child)
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-private", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        aws.s3.BucketOwnershipControls(
            f"{name}-owner", bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sse", bucket=bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn),
                # One data key per bucket rather than per object: KMS requests stay cents a month.
                bucket_key_enabled=True,
            )], opts=child)
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child)
        noncurrent = aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=NONCURRENT_DAYS)
        abort = aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(days_after_initiation=1)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="events", status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=DATA_PREFIX),
                    transitions=[aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                        days=cfg.infrequent_access_days, storage_class="STANDARD_IA")],
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=cfg.expire_days),
                    noncurrent_version_expiration=noncurrent, abort_incomplete_multipart_upload=abort),
                *[aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id=rule_id, status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=rule_prefix),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                    noncurrent_version_expiration=noncurrent, abort_incomplete_multipart_upload=abort)
                  for rule_id, rule_prefix, days in (("failed-records", ERROR_PREFIX, ERRORS_EXPIRY_DAYS),
                                                     ("query-results", RESULTS_PREFIX, RESULTS_EXPIRY_DAYS))],
            ],
            # S3 wants versioning settled before a lifecycle rule on noncurrent versions.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]))
        # S3 rejects concurrent policy and public-access-block updates on one bucket: serialise them.
        aws.s3.BucketPolicy(
            f"{name}-policy", bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(bucket_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block]))
        return bucket

    # ---- roles ----------------------------------------------------------------------------------

    def _role(self, name: str, args: AnalyticsArgs, account: pulumi.Output[str], suffix: str,
              service: str | None, description: str) -> aws.iam.Role:
        role_name = naming.analytics_role(args.name_prefix, suffix)
        return aws.iam.Role(
            f"{name}-{suffix}-role", name=role_name, description=description,
            assume_role_policy=account.apply(lambda acct: json.dumps(trust_policy(acct, service))),
            permissions_boundary=args.permissions_boundary_arn,
            tags=with_name(args.tags, role_name), opts=pulumi.ResourceOptions(parent=self))

    def _reader_role(self, name: str, args: AnalyticsArgs, account: pulumi.Output[str],
                     bucket_arn: pulumi.Output[str], catalog: pulumi.Output[str],
                     database: pulumi.Output[str]) -> aws.iam.Role:
        reader = self._role(name, args, account, "reader", None,
                            f"People and tools querying {args.name_prefix}'s product events with Athena")
        aws.iam.RolePolicy(
            f"{name}-reader-policy", role=reader.id, name="query-events",
            policy=pulumi.Output.all(self.workgroup.arn, bucket_arn, catalog, database, args.kms_key_arn).apply(
                lambda v: json.dumps(reader_policy_document(
                    workgroup_arn=v[0], bucket_arn=v[1], catalog_arn=v[2], database=v[3], key_arn=v[4],
                    region=args.region))),
            opts=pulumi.ResourceOptions(parent=self))
        return reader


def _conversion(database: pulumi.Input[str], table: pulumi.Input[str], role_arn: pulumi.Input[str]
                ) -> aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationArgs:
    """JSON in (Hive SerDe: it is the one that takes the timestamp's format), Parquet out, the Glue table's schema."""
    k = aws.kinesis
    return k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationArgs(
        enabled=True,
        input_format_configuration=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationInputFormatConfigurationArgs(
            deserializer=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationInputFormatConfigurationDeserializerArgs(
                hive_json_ser_de=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationInputFormatConfigurationDeserializerHiveJsonSerDeArgs(
                    timestamp_formats=[TIMESTAMP_FORMAT]))),
        output_format_configuration=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationOutputFormatConfigurationArgs(
            serializer=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationOutputFormatConfigurationSerializerArgs(
                parquet_ser_de=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationOutputFormatConfigurationSerializerParquetSerDeArgs(
                    compression="SNAPPY"))),
        schema_configuration=k.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationSchemaConfigurationArgs(
            database_name=database, table_name=table, role_arn=role_arn),
    )


# ---- policy documents (pure, unit-testable) ------------------------------------------------------

def trust_policy(account: str, service: str | None) -> dict[str, Any]:
    if service is None:  # the readers: principals of this account that IAM allows to assume it
        principal: dict[str, Any] = {"AWS": f"arn:aws:iam::{account}:root"}
        condition: dict[str, Any] = {}
    else:  # Firehose documents sts:ExternalId = the account (confused deputy)
        principal = {"Service": service}
        condition = {"Condition": {"StringEquals": {"sts:ExternalId": account}}}
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **condition}]}


def _via_s3(region: str, bucket_arn: str) -> dict[str, Any]:
    # With an S3 Bucket Key the encryption context is the bucket's ARN; without one the object's.
    return {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
            "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/*"]}}


def delivery_policy_document(*, bucket_arn: str, catalog_arn: str, database: str, table: str, key_arn: str,
                             log_group_arn: str, region: str) -> dict[str, Any]:
    """Firehose's role: write the two prefixes of this bucket, read this one table's schema, log."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "BucketOfTheStream", "Effect": "Allow",
         "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
         "Resource": bucket_arn},
        {"Sid": "WriteEventsAndFailures", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
         "Resource": [f"{bucket_arn}/{DATA_PREFIX}*", f"{bucket_arn}/{ERROR_PREFIX}*"]},
        {"Sid": "ReadEventSchema", "Effect": "Allow",
         "Action": ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
         "Resource": [f"{catalog_arn}:catalog", f"{catalog_arn}:database/{database}",
                      f"{catalog_arn}:table/{database}/{table}"]},
        {"Sid": "EncryptObjects", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Resource": key_arn, "Condition": _via_s3(region, bucket_arn)},
        {"Sid": "DeliveryLogs", "Effect": "Allow", "Action": "logs:PutLogEvents",
         "Resource": f"{log_group_arn}:log-stream:*"},
    ]}


def reader_policy_document(*, workgroup_arn: str, bucket_arn: str, catalog_arn: str, database: str,
                           key_arn: str, region: str) -> dict[str, Any]:
    """Analysts: queries in this workgroup only, the events read-only, results in their own prefix."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "QueryInTheWorkgroup", "Effect": "Allow",
         "Action": ["athena:StartQueryExecution", "athena:StopQueryExecution", "athena:GetQueryExecution",
                    "athena:GetQueryResults", "athena:GetQueryResultsStream", "athena:ListQueryExecutions",
                    "athena:GetWorkGroup", "athena:ListNamedQueries", "athena:GetNamedQuery",
                    "athena:BatchGetNamedQuery", "athena:BatchGetQueryExecution"],
         "Resource": workgroup_arn},
        {"Sid": "ReadTheCatalog", "Effect": "Allow",
         "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartition", "glue:GetPartitions"],
         "Resource": [f"{catalog_arn}:catalog", f"{catalog_arn}:database/{database}",
                      f"{catalog_arn}:table/{database}/*"]},
        {"Sid": "ListTheBucket", "Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
         "Resource": bucket_arn},
        {"Sid": "ReadEvents", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{bucket_arn}/{DATA_PREFIX}*"},
        {"Sid": "WriteResults", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
         "Resource": f"{bucket_arn}/{RESULTS_PREFIX}*"},
        {"Sid": "DecryptThroughS3", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": key_arn, "Condition": _via_s3(region, bucket_arn)},
    ]}


def bucket_policy(bucket_arn: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]}

