"""Feature flags from the AppConfig agent beside the service (FLAGS_URL), never a reason to fail.

The agent answers `GET FLAGS_URL` with the profile's values, `{"<flag>": {"enabled": bool, ...}}`.
A snapshot is kept for `ttl_seconds`, so a request costs at most one short local call per TTL.
When the agent cannot be reached (or answers something else) or a flag is missing from its
answer, the flag's declared default (FLAGS_DEFAULTS, written by the platform from the stack file)
is used: one warning when such an outage starts and one when it ends, not one per request, and the
reads served from defaults are counted in the `FlagDefaultsServed` metric (CloudWatch embedded
metric format on stdout, at most one record a minute).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

log = logging.getLogger(__name__)

METRIC_NAMESPACE = "Refarch/Products"
METRIC_NAME = "FlagDefaultsServed"
METRIC_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class FlagSettings:
    url: str | None = None  # None: no agent (no flags declared); every read is its default
    defaults: Mapping[str, bool] = field(default_factory=dict)
    timeout_seconds: float = 0.2  # the agent is on localhost: anything slower is an outage
    ttl_seconds: float = 5.0

    @classmethod
    def read(cls, env: Any) -> FlagSettings:
        """From the service's environment reader (products.config._Env), collecting problems."""
        raw = env.optional("FLAGS_DEFAULTS", "{}")
        try:
            defaults = json.loads(raw)
        except ValueError:
            defaults = None
        if not (isinstance(defaults, dict) and all(isinstance(v, bool) for v in defaults.values())):
            env.invalid.append("FLAGS_DEFAULTS must be a JSON object of flag name -> true/false")
            defaults = {}
        return cls(
            url=env.optional("FLAGS_URL", "") or None,
            defaults=defaults,
            timeout_seconds=env.number("FLAGS_TIMEOUT_SECONDS", 0.2, minimum=0.01, maximum=5),
            ttl_seconds=env.number("FLAGS_TTL_SECONDS", 5.0, minimum=0, maximum=300),
        )


@dataclass(frozen=True)
class FlagValue:
    name: str
    enabled: bool
    source: str  # "agent" or "default"
    attributes: Mapping[str, Any] = field(default_factory=dict)


class _Unavailable(Exception):
    pass


class Flags:
    def __init__(
        self,
        settings: FlagSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        metrics_out: TextIO | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._out = metrics_out
        self._snapshot: dict[str, Any] | None = None
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self._outage: str | None = None  # why the agent is not answering, while it is not
        self.defaults_served = 0  # every read answered by a default, for the life of the process
        self._unreported = 0
        self._reported_at = clock()

    async def get(self, name: str) -> FlagValue:
        """The flag's current value; its declared default when the agent cannot say."""
        snapshot = await self._current()
        entry = (snapshot or {}).get(name)
        if isinstance(entry, dict) and isinstance(entry.get("enabled"), bool):
            attributes = {k: v for k, v in entry.items() if k != "enabled"}
            return FlagValue(name, entry["enabled"], "agent", attributes)
        if snapshot is not None and self._settings.url:
            log.debug("flag %s is not in the agent's answer: using its default", name)
        self._count_default()
        return FlagValue(name, bool(self._settings.defaults.get(name, False)), "default")

    async def _current(self) -> dict[str, Any] | None:
        if not self._settings.url:
            return None
        if self._fresh():
            return self._snapshot
        async with self._lock:
            if not self._fresh():  # another request refreshed it while this one waited
                self._snapshot = await self._fetch()
                self._fetched_at = self._clock()
        return self._snapshot

    def _fresh(self) -> bool:
        return (
            self._fetched_at is not None
            and self._clock() - self._fetched_at < self._settings.ttl_seconds
        )

    async def _fetch(self) -> dict[str, Any] | None:
        try:
            snapshot = await asyncio.to_thread(self._get_json)
        except _Unavailable as exc:
            if self._outage is None:
                log.warning(
                    "feature flags: agent unavailable (%s); serving declared defaults",
                    exc,
                )
            self._outage = str(exc)
            return None
        if self._outage is not None:
            log.warning("feature flags: agent answering again after an outage (%s)", self._outage)
            self._outage = None
        return snapshot

    def _get_json(self) -> dict[str, Any]:
        url = self._settings.url or ""
        try:
            with urllib.request.urlopen(url, timeout=self._settings.timeout_seconds) as response:  # noqa: S310 - localhost agent
                body = json.loads(response.read())
        except (OSError, ValueError) as exc:  # connection refused, timeout, HTTP error, not JSON
            raise _Unavailable(f"{type(exc).__name__}: {exc}") from None
        if not isinstance(body, dict):
            raise _Unavailable(f"the agent answered a JSON {type(body).__name__}, not an object")
        return body

    def _count_default(self) -> None:
        self.defaults_served += 1
        self._unreported += 1
        now = self._clock()
        if now - self._reported_at >= METRIC_INTERVAL_SECONDS:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Write the defaults served since the last record as one embedded-metric-format line."""
        if not self._unreported:
            return
        record = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": METRIC_NAMESPACE,
                        "Dimensions": [["Service"]],
                        "Metrics": [{"Name": METRIC_NAME, "Unit": "Count"}],
                    }
                ],
            },
            "Service": "products",
            METRIC_NAME: self._unreported,
        }
        out = self._out or sys.stdout
        out.write(json.dumps(record) + "\n")
        out.flush()
        self._unreported = 0
        self._reported_at = self._clock() if now is None else now
