"""Product events for analytics: structured records, batched to Firehose off the request path.

A request only ever calls ``Emitter.emit``, which puts the record on a bounded queue without
waiting: when the queue is full the event is dropped and counted, never the request slowed. One
background thread drains the queue into ``PutRecordBatch`` calls (at most 500 records / 4 MiB
each, Firehose's limits), retries the records a response reports as failed once, and counts what
still fails as dropped. Drops are logged at most once per interval and published as the
``ProductEvents/EventsDropped`` metric in CloudWatch's embedded metric format (a JSON line on stdout
that the awslogs driver ships; CloudWatch extracts the metric, no PutMetricData permission needed).

Records carry ids only (product, an anonymous session id the client may send, the request): no
personal data, no secrets. Without ``ANALYTICS_STREAM`` (local runs, tests) the sink is a no-op
that still counts, so the same code runs everywhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, Protocol
from uuid import UUID

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
METRIC_NAMESPACE = "ProductEvents"  # infra/aws/dashboard.py reads the same names
DROPPED_METRIC = "EventsDropped"
SENT_METRIC = "EventsSent"
MAX_BATCH_RECORDS = 500  # PutRecordBatch: records per call
MAX_BATCH_BYTES = 4 * 1024 * 1024  # PutRecordBatch: bytes per call
MAX_RECORD_BYTES = 1000 * 1024  # Firehose: one record
WAKE = b""  # put by close(): the sender stops waiting for the flush deadline


def occurred_at(now: datetime | None = None) -> str:
    """UTC, millisecond precision: the pattern the Glue table's deserializer is given."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def anonymous_id(value: str | None) -> str | None:
    """A client-sent session id is kept only if it is a UUID: never free text, maybe personal."""
    if not value:
        return None
    try:
        return str(UUID(value.strip()))
    except ValueError:
        return None


def product_event(name: str, *, request_id: str, session_id: str | None = None,
                  product_id: str | None = None, service: str = "products",
                  now: datetime | None = None) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "event": name,
        "occurred_at": occurred_at(now),
        "service": service,
        "product_id": product_id or "",
        "session_id": session_id or request_id,
        "request_id": request_id,
    }


class Sink(Protocol):
    def put(self, records: list[bytes]) -> list[bytes]:
        """Deliver a batch; return the records that failed (to be retried once)."""


class NullSink:
    """No stream configured: counts what it is given and keeps nothing."""

    def __init__(self) -> None:
        self.records = 0

    def put(self, records: list[bytes]) -> list[bytes]:
        self.records += len(records)
        return []


class FirehoseSink:
    def __init__(self, client: Any, stream: str) -> None:
        self._client, self.stream = client, stream

    def put(self, records: list[bytes]) -> list[bytes]:
        response = self._client.put_record_batch(
            DeliveryStreamName=self.stream, Records=[{"Data": data} for data in records])
        return failed_records(records, response)


def failed_records(records: list[bytes], response: dict[str, Any]) -> list[bytes]:
    """The records a PutRecordBatch response reports as failed (an ErrorCode at their position)."""
    if not response.get("FailedPutCount"):
        return []
    results = response.get("RequestResponses") or []
    return [data for data, result in zip(records, results, strict=False) if result.get("ErrorCode")]


def batches(records: list[bytes]) -> list[list[bytes]]:
    """Split into PutRecordBatch calls within both limits, keeping the order."""
    out: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for data in records:
        if current and (len(current) == MAX_BATCH_RECORDS or size + len(data) > MAX_BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(data)
        size += len(data)
    if current:
        out.append(current)
    return out


@dataclass(frozen=True)
class EmitterSettings:
    stream: str | None = None
    region: str = ""
    queue_size: int = 10_000
    flush_seconds: float = 1.0
    # Drops are logged (and the metric published) at most once per this many seconds.
    report_seconds: float = 60.0
    service: str = "products"
    # The event names the stack file declares (ANALYTICS_EVENTS); None: any. Others are dropped.
    events: frozenset[str] | None = None


class Emitter:
    def __init__(self, settings: EmitterSettings, sink: Sink, *, metrics_out: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings, self.sink = settings, sink
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=settings.queue_size)
        self._stop = threading.Event()
        self._metrics_out = metrics_out or sys.stdout
        self._clock = clock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.emitted = self.sent = self.dropped = 0
        self._reported_dropped = self._reported_sent = 0
        self._last_report = clock()
        self._why = ""

    @classmethod
    def from_settings(cls, settings: EmitterSettings, **kwargs: Any) -> Emitter:
        if not settings.stream:
            return cls(settings, NullSink(), **kwargs)
        import botocore.config  # only where a stream is configured
        import botocore.session

        # Short timeouts: a Firehose that hangs fills the queue (drops counted) instead of holding
        # one batch for botocore's default minute; the emitter retries failed records itself.
        config = botocore.config.Config(connect_timeout=2, read_timeout=5,
                                        retries={"mode": "standard", "max_attempts": 2})
        client = botocore.session.get_session().create_client(
            "firehose", region_name=settings.region or None, config=config)
        return cls(settings, FirehoseSink(client, settings.stream), **kwargs)

    # ---- the request side: never blocks ------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> bool:
        with self._lock:
            self.emitted += 1
        declared = self.settings.events
        if declared is not None and event.get("event") not in declared:
            self._drop(1, f"event {event.get('event')!r} not declared in analytics.events")
            return False
        data = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        if len(data) > MAX_RECORD_BYTES:
            self._drop(1, "larger than a Firehose record")
            return False
        try:
            self._queue.put_nowait(data)
        except queue.Full:
            self._drop(1, "queue full")
            return False
        return True

    # ---- the background side -----------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="product-events", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, then stop (called on shutdown, before ECS's SIGKILL).

        Bounded by `timeout`: if Firehose does not answer by then, what is still queued is counted
        as dropped and the process may exit; shutdown never waits on analytics.
        """
        if self._thread is None:
            return
        self._stop.set()
        with contextlib.suppress(queue.Full):  # full: the sender is busy taking, sees the flag soon
            self._queue.put_nowait(WAKE)
        self._thread.join(timeout)
        if self._thread.is_alive():
            left = 0
            with contextlib.suppress(queue.Empty):
                while True:
                    left += bool(self._queue.get_nowait())  # WAKE is no event
            self._drop(left, "not delivered by shutdown")
            log.warning("product events: no answer from Firehose %.0f s into shutdown; "
                        "%d queued events not delivered", timeout, left)
        self._thread = None
        self._report(force=True)

    def _run(self) -> None:
        pending: list[bytes] = []
        deadline = self._clock() + self.settings.flush_seconds
        while True:
            try:
                wait = 0.0 if self._stop.is_set() else max(deadline - self._clock(), 0.01)
                item = self._queue.get(timeout=wait) if wait else self._queue.get_nowait()
                if item:  # not WAKE
                    pending.append(item)
            except queue.Empty:
                if self._stop.is_set():  # stopping and nothing left to take: the last batch
                    self._flush(pending)
                    return
            if len(pending) >= MAX_BATCH_RECORDS or self._clock() >= deadline:
                self._flush(pending)
                pending = []
                deadline = self._clock() + self.settings.flush_seconds
                self._report()

    def _flush(self, records: list[bytes]) -> None:
        for batch in batches(records):
            failed = self._put(batch)
            if failed:
                failed = self._put(failed)  # once: a second failure is a drop, not a retry loop
            with self._lock:
                self.sent += len(batch) - len(failed)
            if failed:
                self._drop(len(failed), "Firehose refused them twice")

    def _put(self, batch: list[bytes]) -> list[bytes]:
        try:
            return self.sink.put(batch)
        except Exception as exc:  # noqa: BLE001 - any failure of the call fails the whole batch
            log.debug("PutRecordBatch failed: %s", type(exc).__name__)
            return batch

    def _drop(self, count: int, why: str) -> None:
        # Counted here, reported by the background thread: a request never writes a log line for it.
        with self._lock:
            self.dropped += count
            self._why = why

    def _report(self, force: bool = False) -> None:
        """At most once per report interval: a warning for new drops, and the EMF metric line."""
        now = self._clock()
        with self._lock:
            if not force and now - self._last_report < self.settings.report_seconds:
                return
            dropped, why = self.dropped - self._reported_dropped, self._why
            sent = self.sent - self._reported_sent
            self._reported_dropped, self._reported_sent = self.dropped, self.sent
            self._last_report = now
        if dropped:
            log.warning("product events: %d dropped in the last %.0f s (%s)", dropped,
                        self.settings.report_seconds, why)
        if (dropped or sent) and self.settings.stream:
            self._metrics_out.write(json.dumps(self._emf(dropped, sent)) + "\n")
            self._metrics_out.flush()

    def _emf(self, dropped: int, sent: int) -> dict[str, Any]:
        return {
            "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE, "Dimensions": [["Stream"]],
                "Metrics": [{"Name": DROPPED_METRIC, "Unit": "Count"},
                            {"Name": SENT_METRIC, "Unit": "Count"}],
            }]},
            "Stream": self.settings.stream, DROPPED_METRIC: dropped, SENT_METRIC: sent,
        }
