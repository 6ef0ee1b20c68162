"""A circuit breaker: after a dependency fails, stop waiting on it until a probe succeeds.

Closed: calls go through. A failure opens it: calls are refused at once (no connect
timeout, no pool wait) and one background probe runs every ``reset_seconds``; only a
probe that succeeds closes it again. Requests never serve as probes, so none of them pays
for a dead or frozen dependency once the breaker is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        probe: Callable[[], Awaitable[None]],
        *,
        reset_seconds: float,
        probe_timeout: float,
    ) -> None:
        self.name = name
        self._probe = probe
        self.reset_seconds = reset_seconds
        self.probe_timeout = probe_timeout
        self.opened_at: float | None = None
        self.opened = asyncio.Event()  # set while open: lets waiters give up at once
        self._prober: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def _close(self) -> None:
        # Only a probe closes the breaker: a request that was already under way when the
        # dependency failed may still succeed, and must not reopen the floodgates.
        if self.opened_at is not None:
            log.info("%s is back after %.1f s", self.name, time.monotonic() - self.opened_at)
        self.opened_at = None
        self.opened.clear()

    def record_failure(self, reason: str) -> None:
        if self.opened_at is None:
            self.opened_at = time.monotonic()
            self.opened.set()
            log.warning(
                "%s unavailable (%s): failing fast until a probe succeeds", self.name, reason
            )
        if self._prober is None or self._prober.done():
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to probe from
                self._prober = asyncio.get_running_loop().create_task(self._probe_until_closed())

    async def _probe_until_closed(self) -> None:
        while self.opened_at is not None:
            await asyncio.sleep(self.reset_seconds)
            try:
                await asyncio.wait_for(self._probe(), timeout=self.probe_timeout)
            except Exception as exc:  # noqa: BLE001 - any failure keeps the breaker open
                log.debug("%s probe failed (%s)", self.name, type(exc).__name__)
                continue
            self._close()

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
