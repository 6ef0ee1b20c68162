"""`refarch:analytics`: product events through Firehose to Parquet in S3, queried with Athena.

The limits are AWS's own: Firehose buffers 0..900 s and, with record format conversion (JSON to
Parquet), 64..128 MiB; Athena's per-query scan cutoff is at least 10 MB; S3 moves objects to
STANDARD_IA no earlier than 30 days after creation. A local stack never reads this section (its
sample service gets no stream and counts events into a no-op sink).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from infra.config.base import Strict

FIREHOSE_MAX_BUFFER_SECONDS = 900
CONVERSION_MIN_BUFFER_MB = 64  # Firehose's floor when it converts records to Parquet
FIREHOSE_MAX_BUFFER_MB = 128
ATHENA_MIN_SCAN_MB = 10
STANDARD_IA_MIN_DAYS = 30
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# What the sample service emits; the saved queries read these.
DEFAULT_EVENTS = ("product_viewed", "product_listed", "product_created")


class AnalyticsConfig(Strict):
    enabled: bool = True
    # Firehose delivers when either fills first: a file per 5 minutes at low volume.
    buffer_seconds: Annotated[int, Field(ge=0, le=FIREHOSE_MAX_BUFFER_SECONDS)] = 300
    buffer_mb: int = FIREHOSE_MAX_BUFFER_MB
    # Athena cancels (and bills up to) a query that would scan more; 1 GiB is ~$0.005 a query.
    query_scan_limit_mb: int = 1024
    infrequent_access_days: int = 90  # then STANDARD_IA (still queryable by Athena)
    expire_days: int = 730
    events: list[str] = list(DEFAULT_EVENTS)

    @field_validator("buffer_mb")
    @classmethod
    def _buffer(cls, value: int) -> int:
        if not CONVERSION_MIN_BUFFER_MB <= value <= FIREHOSE_MAX_BUFFER_MB:
            raise ValueError(f"{value} MiB: Firehose converting records to Parquet buffers "
                             f"{CONVERSION_MIN_BUFFER_MB}..{FIREHOSE_MAX_BUFFER_MB} MiB")
        return value

    @field_validator("query_scan_limit_mb")
    @classmethod
    def _scan(cls, value: int) -> int:
        if value < ATHENA_MIN_SCAN_MB:
            raise ValueError(f"{value} MB is below Athena's per-query floor of {ATHENA_MIN_SCAN_MB} MB")
        return value

    @field_validator("infrequent_access_days")
    @classmethod
    def _ia(cls, value: int) -> int:
        if value < STANDARD_IA_MIN_DAYS:
            raise ValueError(f"{value} days: S3 moves objects to STANDARD_IA no earlier than "
                             f"{STANDARD_IA_MIN_DAYS} days")
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one event the service may emit")
        for i, name in enumerate(value):
            if not EVENT_NAME.match(name):
                raise ValueError(f"[{i}] {name!r} is not an event name: lowercase letters, digits and _, "
                                 f"starting with a letter, at most 64 characters")
            if name in value[:i]:
                raise ValueError(f"[{i}] {name!r} is listed twice")
        return value



def analytics_problems(analytics: AnalyticsConfig) -> list[str]:
    """Rules spanning the section's fields, each with its key path (StackConfig reports them)."""
    if analytics.expire_days <= analytics.infrequent_access_days:
        return [f"analytics.expire_days: {analytics.expire_days} days expires the events before they move to "
                f"STANDARD_IA (infrequent_access_days {analytics.infrequent_access_days}): make it later"]
    return []
