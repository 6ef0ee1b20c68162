"""Product events against a real moto server process: Firehose delivers them to S3, and a burst
larger than the queue neither slows nor fails a request, its drops counted exactly."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from products.app import create_app
from products.config import ConfigError, Settings
from products.events import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    MAX_RECORD_BYTES,
    Emitter,
    EmitterSettings,
    FirehoseSink,
    NullSink,
    batches,
    failed_records,
    product_event,
)

with warnings.catch_warnings():
    # As conftest: newer Starlette prefers the "httpx2" fork; both work.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

REGION = "us-east-1"
SCHEMA_KEYS = {
    "schema_version",
    "event",
    "occurred_at",
    "service",
    "product_id",
    "session_id",
    "request_id",
}
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[tuple[str, subprocess.Popen]]:
    """A moto server process of our own on a free port, stopped by its PID."""
    port = free_port()
    binary = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with _direct.open(f"{url}/moto-api/", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"moto_server exited with {proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not answer within 30s") from None
                time.sleep(0.1)
        yield url, proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def aws(moto_server: tuple[str, subprocess.Popen], monkeypatch: pytest.MonkeyPatch) -> str:
    """botocore (the service's) and boto3 (the test's) pointed at moto, fake credentials."""
    url, _ = moto_server
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv(
        "NO_PROXY", ",".join(filter(None, (os.environ.get("NO_PROXY"), "127.0.0.1,localhost")))
    )
    return url


@pytest.fixture
def stream(aws: str) -> dict[str, Any]:
    """A delivery stream of this test's own, delivering to a bucket of its own."""
    suffix = uuid.uuid4().hex[:8]
    bucket, name = f"events-{suffix}", f"refarch-test-events-{suffix}"
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    boto3.client("firehose", region_name=REGION).create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/refarch-test-analytics-firehose",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "events/",
        },
    )
    return {"name": name, "bucket": bucket, "s3": s3}


def delivered(stream: dict[str, Any]) -> list[dict[str, Any]]:
    """Every event in the stream's bucket, one JSON document per line."""
    s3, out = stream["s3"], []
    for obj in s3.list_objects_v2(Bucket=stream["bucket"]).get("Contents", []):
        assert obj["Key"].startswith("events/"), obj["Key"]
        body = s3.get_object(Bucket=stream["bucket"], Key=obj["Key"])["Body"].read().decode()
        out += [json.loads(line) for line in body.splitlines() if line]
    return out


def until_taken(emitter: Emitter, timeout: float = 5.0) -> None:
    """Wait until the sender has taken everything queued, then past its flush: it is mid-call."""
    deadline = time.monotonic() + timeout
    while emitter._queue.qsize() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(emitter.settings.flush_seconds + 0.25)


def emitter_for(stream: dict[str, Any], **fields: Any) -> Emitter:
    settings = EmitterSettings(stream=stream["name"], region=REGION, **fields)
    return Emitter.from_settings(settings, metrics_out=io.StringIO())


# ---- the emitter on its own -------------------------------------------------------------------


def test_events_reach_s3_through_firehose_as_one_json_record_each(stream):
    emitter = emitter_for(stream, flush_seconds=0.05)
    assert isinstance(emitter.sink, FirehoseSink)
    emitter.start()
    sent = [
        product_event("product_viewed", request_id=f"req-{i}", product_id=str(uuid.uuid4()))
        for i in range(3)
    ]
    assert all(emitter.emit(e) for e in sent)
    emitter.close()
    assert delivered(stream) == sent
    assert (emitter.emitted, emitter.sent, emitter.dropped) == (3, 3, 0)
    assert set(sent[0]) == SCHEMA_KEYS and sent[0]["schema_version"] == 1
    assert sent[0]["occurred_at"].endswith("Z") and len(sent[0]["occurred_at"]) == len(
        "2026-12-02T20:00:00.000Z"
    )


def test_more_than_one_batch_is_split_within_firehose_limits(stream):
    emitter = emitter_for(stream, flush_seconds=5)
    for i in range(MAX_BATCH_RECORDS + 20):  # queued before the thread starts: one flush on close
        emitter.emit(product_event("product_listed", request_id=f"r{i}"))
    emitter.start()
    emitter.close()
    events = delivered(stream)
    assert len(events) == MAX_BATCH_RECORDS + 20 and emitter.sent == len(events)
    s3 = stream["s3"]
    assert len(s3.list_objects_v2(Bucket=stream["bucket"])["Contents"]) == 2, (
        "one PutRecordBatch per 500"
    )
    big = [b"x" * MAX_RECORD_BYTES] * 9  # 1000 KiB each: four fit in 4 MiB, a fifth does not
    assert [len(b) for b in batches(big)] == [4, 4, 1]
    assert all(sum(map(len, b)) <= MAX_BATCH_BYTES for b in batches(big))


def test_a_full_queue_drops_and_counts_exactly_and_never_waits(stream):
    emitter = emitter_for(stream, queue_size=10)
    started = time.perf_counter()
    accepted = [
        emitter.emit(product_event("product_viewed", request_id=f"r{i}")) for i in range(25)
    ]
    assert time.perf_counter() - started < 0.5
    assert accepted == [True] * 10 + [False] * 15
    emitter.start()
    emitter.close()
    assert (emitter.emitted, emitter.sent, emitter.dropped) == (25, 10, 15)
    assert [e["request_id"] for e in delivered(stream)] == [f"r{i}" for i in range(10)]
    # The drops reach CloudWatch as an embedded-metric-format line (extracted from the task's logs).
    (line,) = emitter._metrics_out.getvalue().splitlines()  # type: ignore[attr-defined]
    emf = json.loads(line)
    assert (
        emf["EventsDropped"] == 15 and emf["EventsSent"] == 10 and emf["Stream"] == stream["name"]
    )
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ProductEvents"


def test_a_stream_that_refuses_every_call_loses_events_counted_not_requests(aws, caplog):
    emitter = Emitter.from_settings(
        EmitterSettings(
            stream="no-such-stream", region=REGION, flush_seconds=0.05, report_seconds=3600
        ),
        metrics_out=io.StringIO(),
    )
    emitter.start()
    for i in range(7):
        emitter.emit(product_event("product_viewed", request_id=f"r{i}"))
    emitter.close()
    assert (emitter.sent, emitter.dropped) == (0, 7)
    warnings = [r.getMessage() for r in caplog.records if r.name == "products.events"]
    assert warnings == [
        "product events: 7 dropped in the last 3600 s (Firehose refused them twice)"
    ]


def test_only_the_records_a_response_reports_failed_are_retried():
    records = [b"a", b"b", b"c"]
    # The shape PutRecordBatch answers with (Firehose API reference); moto never reports failures.
    response = {
        "FailedPutCount": 2,
        "RequestResponses": [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"},
            {"RecordId": "1"},
            {"ErrorCode": "InternalFailure", "ErrorMessage": "x"},
        ],
    }
    assert failed_records(records, response) == [b"a", b"c"]
    assert (
        failed_records(records, {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "1"}] * 3})
        == []
    )


def test_no_stream_is_a_no_op_sink_that_still_counts():
    emitter = Emitter.from_settings(EmitterSettings(flush_seconds=0.05))
    assert isinstance(emitter.sink, NullSink)
    emitter.start()
    emitter.emit(product_event("product_created", request_id="r"))
    emitter.close()
    assert (emitter.emitted, emitter.sent, emitter.sink.records) == (1, 1, 1)


def test_the_stream_comes_from_the_environment_and_needs_a_region():
    base = {
        "DATABASE_HOST": "db",
        "DATABASE_NAME": "p",
        "DATABASE_USER": "u",
        "DATABASE_PASSWORD": "pw",
        "CACHE_HOST": "c",
    }
    assert Settings.from_env(base).analytics.stream is None
    on = Settings.from_env(
        {**base, "ANALYTICS_STREAM": "refarch-dev-events", "AWS_REGION": "us-east-1"}
    )
    assert (on.analytics.stream, on.analytics.region) == ("refarch-dev-events", "us-east-1")
    with pytest.raises(
        ConfigError, match=r"^ANALYTICS_STREAM needs AWS_REGION \(ECS sets it on Fargate\)$"
    ):
        Settings.from_env({**base, "ANALYTICS_STREAM": "refarch-dev-events"})


# ---- through the API ----------------------------------------------------------------------------


def test_the_api_emits_created_listed_and_viewed_with_ids_only(settings, stream):
    app_settings = replace(
        settings, analytics=EmitterSettings(stream=stream["name"], region=REGION)
    )
    session = str(uuid.uuid4())
    with TestClient(create_app(app_settings)) as client:
        created = client.post("/products", json={"name": "Lamp", "price": "19.90"})
        assert created.status_code == 201
        product_id = created.json()["id"]
        assert (
            client.get(f"/products/{product_id}", headers={"X-Session-Id": session}).status_code
            == 200
        )
        assert (
            client.get("/products", headers={"X-Session-Id": "alice@example.com"}).status_code
            == 200
        )
    events = delivered(stream)  # the lifespan's shutdown flushed them
    assert [e["event"] for e in events] == ["product_created", "product_viewed", "product_listed"]
    assert all(set(e) == SCHEMA_KEYS for e in events)
    assert events[0]["product_id"] == events[1]["product_id"] == product_id
    assert events[1]["session_id"] == session
    # Free text in the session header is never stored: the request id stands in.
    assert events[2]["session_id"] == events[2]["request_id"] and "alice" not in json.dumps(events)


def test_a_burst_larger_than_the_queue_leaves_requests_fast_and_drops_counted(
    settings, stream, moto_server
):
    _, moto = moto_server
    queue_size, burst = 20, 100
    app_settings = replace(
        settings,
        analytics=EmitterSettings(
            stream=stream["name"], region=REGION, queue_size=queue_size, flush_seconds=0.05
        ),
    )
    with TestClient(create_app(app_settings)) as client:
        product_id = client.post("/products", json={"name": "Desk", "price": "99.00"}).json()["id"]
        emitter: Emitter = client.app.state.events
        deadline = time.monotonic() + 5
        while emitter.sent < 1 and time.monotonic() < deadline:  # the creation event delivered
            time.sleep(0.01)
        assert emitter.sent == 1
        moto.send_signal(signal.SIGSTOP)  # Firehose stops answering mid-flight
        try:
            assert client.get(f"/products/{product_id}").status_code == 200
            until_taken(
                emitter
            )  # that event is now the sender's in-flight batch, blocked on Firehose
            timings, statuses = [], []
            for _ in range(burst):
                started = time.perf_counter()
                statuses.append(client.get(f"/products/{product_id}").status_code)
                timings.append(time.perf_counter() - started)
            assert statuses == [200] * burst
            assert max(timings) < 0.5, f"slowest request {max(timings):.3f} s"
            assert emitter.dropped == burst - queue_size
        finally:
            moto.send_signal(signal.SIGCONT)
    events = delivered(stream)
    assert len(events) == 1 + 1 + queue_size == emitter.sent
    assert (emitter.emitted, emitter.dropped) == (2 + burst, burst - queue_size)


def test_shutdown_never_waits_on_a_firehose_that_does_not_answer(stream, moto_server):
    _, moto = moto_server
    emitter = emitter_for(stream, flush_seconds=0.05)
    emitter.start()
    moto.send_signal(signal.SIGSTOP)
    try:
        emitter.emit(product_event("product_viewed", request_id="in-flight"))
        until_taken(emitter)  # that one is in flight, blocked
        for i in range(5):
            emitter.emit(product_event("product_viewed", request_id=f"queued-{i}"))
        started = time.perf_counter()
        emitter.close(timeout=0.5)
        assert time.perf_counter() - started < 1.0
        assert emitter.dropped == 5  # the queued ones; the one in flight may still land
    finally:
        moto.send_signal(signal.SIGCONT)


def test_events_the_stack_file_does_not_declare_are_dropped_and_counted(stream):
    emitter = emitter_for(stream, flush_seconds=0.05, events=frozenset({"product_viewed"}))
    emitter.start()
    assert emitter.emit(product_event("product_viewed", request_id="a"))
    assert not emitter.emit(product_event("user_signed_up", request_id="b"))
    emitter.close()
    assert [e["event"] for e in delivered(stream)] == ["product_viewed"]
    assert (emitter.emitted, emitter.sent, emitter.dropped) == (2, 1, 1)
    env = {
        "DATABASE_HOST": "db",
        "DATABASE_NAME": "p",
        "DATABASE_USER": "u",
        "DATABASE_PASSWORD": "pw",
        "CACHE_HOST": "c",
    }
    declared = Settings.from_env({**env, "ANALYTICS_EVENTS": "product_viewed, product_created"})
    assert declared.analytics.events == {"product_viewed", "product_created"}
    assert Settings.from_env(env).analytics.events is None
