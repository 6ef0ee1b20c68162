"""Product analytics on every shipped AWS stack: Firehose -> Parquet in S3 -> Glue table -> Athena."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra.aws.analytics import DATA_PREFIX, ERROR_PREFIX, RESULTS_PREFIX, TABLE
from infra.aws.analytics_queries import EVENT_COLUMNS
from infra.aws.dashboard import EVENTS_DROPPED, EVENTS_NAMESPACE
from ops.synth import run

KEY_TYPE = "aws:kms/key:Key"


@pytest.fixture(params=("dev", "staging", "prod"))
def stack(request):
    return request.param


@pytest.fixture
def s(synths, stack):
    return synths[stack]


@pytest.fixture
def cfg(config_of, stack):
    return config_of(stack)


def bucket(s) -> dict:
    return s.one("aws:s3/bucket:Bucket", "analytics-bucket")


def attached(s, typ: str) -> dict:
    (r,) = [r for r in s.of_type(typ) if r["inputs"]["bucket"] == bucket(s)["id"]]
    return r["inputs"]


def role_policy(s, name: str) -> list[dict]:
    return json.loads(s.one("aws:iam/rolePolicy:RolePolicy", name)["inputs"]["policy"])["Statement"]


def stream(s) -> dict:
    return s.one("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream", "analytics-stream")


def test_bucket_is_private_kms_encrypted_versioned_tls_only(s):
    key = s.one(KEY_TYPE)["arn"]
    block = attached(s, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    assert attached(s, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"}
    (rule,) = attached(s, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key}
    assert rule["bucketKeyEnabled"] is True
    assert attached(s, "aws:s3/bucketVersioning:BucketVersioning")["versioningConfiguration"] == {"status": "Enabled"}
    (deny,) = json.loads(attached(s, "aws:s3/bucketPolicy:BucketPolicy")["policy"])["Statement"]
    assert (deny["Effect"], deny["Action"], deny["Condition"]) == (
        "Deny", "s3:*", {"Bool": {"aws:SecureTransport": "false"}})
    assert bucket(s)["inputs"]["bucket"] == s.outputs["analytics"]["bucket_name"]


def test_lifecycle_moves_events_to_infrequent_access_then_expires_them(s, cfg):
    rules = {r["id"]: r for r in attached(s, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"]}
    events = rules["events"]
    assert events["filter"] == {"prefix": DATA_PREFIX}
    assert events["transitions"] == [{"days": cfg.analytics.infrequent_access_days, "storageClass": "STANDARD_IA"}]
    assert events["expiration"] == {"days": cfg.analytics.expire_days}
    assert {rules["failed-records"]["filter"]["prefix"], rules["query-results"]["filter"]["prefix"]} == {
        ERROR_PREFIX, RESULTS_PREFIX}
    assert all(r["status"] == "Enabled" and r["noncurrentVersionExpiration"]["noncurrentDays"] > 0
               for r in rules.values())


def test_glue_table_holds_the_schema_as_parquet_with_a_projected_date_partition(s):
    table = s.one("aws:glue/catalogTable:CatalogTable")["inputs"]
    database = s.one("aws:glue/catalogDatabase:CatalogDatabase")["inputs"]["name"]
    assert (table["name"], table["databaseName"], table["tableType"]) == (TABLE, database, "EXTERNAL_TABLE")
    sd = table["storageDescriptor"]
    assert sd["serDeInfo"]["serializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert sd["inputFormat"].endswith("MapredParquetInputFormat")
    assert [(c["name"], c["type"]) for c in sd["columns"]] == [(c, t) for c, t, _ in EVENT_COLUMNS]
    assert table["partitionKeys"] == [{"name": "dt", "type": "string"}]
    params = table["parameters"]
    assert (params["projection.enabled"], params["projection.dt.type"], params["projection.dt.format"]) == (
        "true", "date", "yyyy-MM-dd")
    location = f"s3://{bucket(s)['inputs']['bucket']}/{DATA_PREFIX}"
    assert sd["location"] == location
    assert params["storage.location.template"] == f"{location}dt=${{dt}}/"


def test_firehose_writes_parquet_under_the_partition_the_table_projects(s, cfg):
    inputs = stream(s)["inputs"]
    key = s.one(KEY_TYPE)["arn"]
    assert inputs["destination"] == "extended_s3"
    assert inputs["serverSideEncryption"] == {"enabled": True, "keyType": "CUSTOMER_MANAGED_CMK", "keyArn": key}
    ext = inputs["extendedS3Configuration"]
    assert ext["bucketArn"] == bucket(s)["arn"] and ext["kmsKeyArn"] == key
    assert (ext["bufferingInterval"], ext["bufferingSize"]) == (cfg.analytics.buffer_seconds, cfg.analytics.buffer_mb)
    # Firehose's `!{timestamp:yyyy-MM-dd}` and the table's `${dt}` (yyyy-MM-dd) name the same folders.
    assert ext["prefix"] == f"{DATA_PREFIX}dt=!{{timestamp:yyyy-MM-dd}}/"
    assert ext["errorOutputPrefix"].startswith(ERROR_PREFIX) and "!{firehose:error-output-type}" in ext["errorOutputPrefix"]
    conversion = ext["dataFormatConversionConfiguration"]
    assert conversion["enabled"] is True
    assert conversion["outputFormatConfiguration"]["serializer"]["parquetSerDe"]["compression"] == "SNAPPY"
    assert conversion["schemaConfiguration"]["tableName"] == TABLE
    logging = ext["cloudwatchLoggingOptions"]
    group = s.one("aws:cloudwatch/logGroup:LogGroup", "analytics-firehose-logs")["inputs"]
    assert logging["enabled"] is True and logging["logGroupName"] == group["name"] and group["kmsKeyId"] == key
    assert s.outputs["analytics"]["stream_name"] == inputs["name"]


def test_the_firehose_role_writes_only_its_prefixes_and_reads_only_its_table(s):
    b = bucket(s)["arn"]
    st = {x["Sid"]: x for x in role_policy(s, "analytics-firehose-policy")}
    assert st["WriteEventsAndFailures"]["Resource"] == [f"{b}/{DATA_PREFIX}*", f"{b}/{ERROR_PREFIX}*"]
    assert st["BucketOfTheStream"]["Resource"] == b
    glue = st["ReadEventSchema"]
    assert all(a.startswith("glue:GetTable") for a in glue["Action"])
    assert glue["Resource"][-1].endswith(f":table/{s.one('aws:glue/catalogDatabase:CatalogDatabase')['inputs']['name']}/{TABLE}")
    kms = st["EncryptObjects"]
    assert kms["Resource"] == s.one(KEY_TYPE)["arn"]
    assert kms["Condition"]["StringEquals"] == {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    assert kms["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == [b, f"{b}/*"]
    trust = json.loads(s.one("aws:iam/role:Role", "analytics-firehose-role")["inputs"]["assumeRolePolicy"])
    (stmt,) = trust["Statement"]
    assert stmt["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert stmt["Condition"] == {"StringEquals": {"sts:ExternalId": "123456789012"}}


def test_workgroup_enforces_its_encrypted_results_prefix_and_scan_limit(s, cfg):
    conf = s.one("aws:athena/workgroup:Workgroup")["inputs"]["configuration"]
    assert conf["enforceWorkgroupConfiguration"] is True
    assert conf["bytesScannedCutoffPerQuery"] == cfg.analytics.query_scan_limit_mb * 1024 * 1024
    result = conf["resultConfiguration"]
    assert result["outputLocation"] == f"s3://{bucket(s)['inputs']['bucket']}/{RESULTS_PREFIX}"
    assert result["encryptionConfiguration"] == {"encryptionOption": "SSE_KMS", "kmsKeyArn": s.one(KEY_TYPE)["arn"]}


def test_saved_queries_read_the_stack_table_by_partition_and_the_events_the_service_emits(s, cfg):
    workgroup = s.one("aws:athena/workgroup:Workgroup")["inputs"]["name"]
    database = s.one("aws:glue/catalogDatabase:CatalogDatabase")["inputs"]["name"]
    queries = {q["inputs"]["name"]: q["inputs"] for q in s.of_type("aws:athena/namedQuery:NamedQuery")}
    assert set(queries) == {"daily-active-sessions", "top-products", "list-to-view-conversion"}
    for q in queries.values():
        assert (q["workgroup"], q["database"]) == (workgroup, database)
        assert f'"{database}"."{TABLE}"' in q["query"] and "dt >= " in q["query"], q["name"]
        assert set(re.findall(r"'(product_[a-z_]+)'", q["query"])) <= set(cfg.analytics.events), q["name"]


def test_readers_query_through_their_own_role_not_the_services(s):
    b, workgroup = bucket(s)["arn"], s.one("aws:athena/workgroup:Workgroup")["arn"]
    st = {x["Sid"]: x for x in role_policy(s, "analytics-reader-policy")}
    assert st["QueryInTheWorkgroup"]["Resource"] == workgroup
    assert all(a.startswith("athena:") for a in st["QueryInTheWorkgroup"]["Action"])
    assert st["ReadEvents"] == {"Sid": "ReadEvents", "Effect": "Allow", "Action": "s3:GetObject",
                                "Resource": f"{b}/{DATA_PREFIX}*"}
    assert "s3:PutObject" in st["WriteResults"]["Action"] and st["WriteResults"]["Resource"] == f"{b}/{RESULTS_PREFIX}*"
    assert not any("Put" in a for x in st.values() if x["Sid"] != "WriteResults" for a in _listed(x["Action"]))
    assert all(a.startswith("glue:Get") for a in st["ReadTheCatalog"]["Action"])
    reader = s.one("aws:iam/role:Role", "analytics-reader-role")
    assert s.outputs["analytics"]["reader_role_arn"] == reader["arn"]
    assert reader["inputs"]["name"] != s.one("aws:iam/role:Role", "services-products-task-role")["inputs"]["name"]


def test_the_task_role_puts_on_its_stacks_stream_and_the_app_is_told_its_name(s, cfg):
    (put,) = role_policy(s, "services-products-task-events")
    assert put == {"Sid": "PutOwnStackEvents", "Effect": "Allow",
                   "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"], "Resource": stream(s)["arn"]}
    assert stream(s)["arn"] == f"arn:aws:firehose:us-east-1:123456789012:deliverystream/{stream(s)['inputs']['name']}"
    task = s.one("aws:ecs/taskDefinition:TaskDefinition", "services-products-task")
    (app,) = [c for c in json.loads(task["inputs"]["containerDefinitions"]) if c["name"] == "products"]
    env = {e["name"]: e["value"] for e in app["environment"]}
    assert env["ANALYTICS_STREAM"] == stream(s)["inputs"]["name"]
    assert env["ANALYTICS_EVENTS"].split(",") == cfg.analytics.events


def test_dashboard_row_and_delivery_alarms_watch_this_stream(s, cfg):
    name = stream(s)["inputs"]["name"]
    body = json.loads(s.one("aws:cloudwatch/dashboard:Dashboard")["inputs"]["dashboardBody"])
    metrics = [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]
    assert ["AWS/Firehose", "IncomingRecords", "DeliveryStreamName", name, {"stat": "Sum"}] in metrics
    assert ["AWS/Firehose", "DeliveryToS3.Records", "DeliveryStreamName", name, {"stat": "Sum"}] in metrics
    assert [EVENTS_NAMESPACE, EVENTS_DROPPED, "Stream", name, {"stat": "Sum"}] in metrics
    alarms = {a["inputs"]["name"]: a["inputs"] for a in s.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    stale = alarms[f"refarch-{s.stack}-analytics-delivery-stale"]
    assert (stale["metricName"], stale["dimensions"]) == ("DeliveryToS3.DataFreshness", {"DeliveryStreamName": name})
    assert stale["threshold"] == cfg.analytics.buffer_seconds + 900 and stale["treatMissingData"] == "notBreaching"


def test_the_services_dropped_metric_is_the_one_the_dashboard_reads():
    from products import events

    assert (events.METRIC_NAMESPACE, events.DROPPED_METRIC) == (EVENTS_NAMESPACE, EVENTS_DROPPED)


def test_analytics_off_creates_nothing_of_it_and_grants_nothing(config_of):
    s = run(config_of("dev", analytics={"enabled": False}), "dev")
    types = {r["type"] for r in s.resources}
    assert not types & {"aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream", "aws:athena/workgroup:Workgroup",
                        "aws:glue/catalogTable:CatalogTable"}
    assert "services-products-task-events" not in {r["name"] for r in s.of_type("aws:iam/rolePolicy:RolePolicy")}
    assert s.outputs["analytics"] is None


def test_a_local_stack_accepts_the_section_and_ignores_it():
    from tests.local.conftest import parse_local

    cfg = parse_local(**{"refarch:analytics": {"enabled": True, "buffer_seconds": 60}})
    assert cfg.analytics.buffer_seconds == 60 and cfg.analytics_enabled is False


def _listed(value):
    return value if isinstance(value, list) else [value]


def test_the_diagram_draws_service_to_stream_to_bucket_from_the_references(s):
    from ops.review import diagram

    graph = diagram.build(s.to_json())
    service = graph.by_urn[s.one("aws:ecs/service:Service")["urn"]]
    fh = graph.by_urn[stream(s)["urn"]]
    store = graph.by_urn[bucket(s)["urn"]]
    assert graph.edges[(service, fh)].labels == ["events"]
    assert graph.edges[(fh, store)].labels == ["Parquet"]
    assert graph.nodes[fh].layer == graph.nodes[store].layer == "analytics"


DEV_BUDGET = 60.0  # dollars a month at list price, the bound for dev


def test_analytics_is_priced_from_the_usage_assumptions_and_dev_stays_in_budget(synths, config_of):
    from ops.review import cost

    dev = config_of("dev")
    listed = cost.estimate(synths["dev"].to_json(), dev.usage, dev.region, cloudwatch_free_tier=False)
    assert listed.total <= DEV_BUDGET, cost.money(listed.total)
    charges = {c.what.split(" (")[0]: c for r in listed.resources if r.layer == "analytics" for c in r.charges}
    ingest = charges["ingestion"]
    # 100,000 events billed at 5 KB each: 0.512 GB at $0.029.
    assert (round(ingest.quantity, 3), ingest.unit_price) == (0.512, 0.029)
    assert charges["JSON to Parquet conversion"].quantity == ingest.quantity
    scanned = charges["data scanned"]
    assert round(scanned.quantity, 4) == round(dev.usage.athena_queries_per_month * 0.1 / 1000, 4)
    statuses = {r.name: r.status for r in listed.resources if r.layer == "analytics"}
    assert statuses["analytics-table"] == statuses["analytics-database"] == "free"
    assert statuses["analytics-stream"] == statuses["analytics-workgroup"] == "priced"


def test_the_table_schema_is_the_shape_the_service_writes():
    from datetime import UTC, datetime

    from products import events

    from infra.aws.analytics import TIMESTAMP_FORMAT
    from infra.config.analytics import DEFAULT_EVENTS

    record = events.product_event("product_viewed", request_id="r", product_id="p",
                                  now=datetime(2026, 12, 2, 20, 0, 1, 234567, tzinfo=UTC))
    # Same columns in the same order, and the timestamp in the Joda pattern Firehose is given.
    assert list(record) == [name for name, _, _ in EVENT_COLUMNS]
    assert record["occurred_at"] == "2026-12-02T20:00:01.234Z"
    assert TIMESTAMP_FORMAT == "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
    assert record["schema_version"] == events.SCHEMA_VERSION == 1
    # The app emits exactly the events the schema lists by default.
    app_source = Path(events.__file__).with_name("app.py").read_text()
    emitted = set(re.findall(r'_emit\(request, "([a-z_]+)"', app_source))
    assert emitted == set(DEFAULT_EVENTS)
