"""The shortcuts an offline synth takes through Pulumi's Python runtime, and why each is safe.

The runtime is written for a program talking to an engine over gRPC: registrations go through a
thread pool, every registration captures a traceback, every output is tracked under a lock. Under
the mock monitor none of that buys anything, and together it was most of a 100-service synth's
time (issue 9's goal: a whole 100-service `invoke synth` process <= 6.5 s). Each shortcut is
undone on exit, so a program run in the same process afterwards (a test, a preview) sees the
runtime unchanged. Byte-identical synths before and after are the test of each (tests/test_synth.py).

Measured on the 100-service bench stack (bench/synth_bench.py, 3,413 resources, 2 cores):
  inline executor        -0.5 s   no thread hop per registration and invoke
  memoised unwrap_type   -0.25 s  the same few hundred type hints unwrapped ~90,000 times
  plain output tracking  -0.3 s   one set, no context-variable lookup and lock per output
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from typing import Any


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs each submitted call at once on the caller's thread.

    The runtime sends every registration and invoke to the loop's default executor because a
    real monitor blocks on gRPC. The mock monitor answers in microseconds, so the thread hop and
    the GIL hand-over cost more than the call. Calls that need the loop (a slow-path serialise)
    use Pulumi's own re-entrant `_sync_await`, which is written for a running loop.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine, like a pool would
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def offline_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop with the inline executor, closed on exit."""
    loop = asyncio.new_event_loop()
    loop.set_default_executor(InlineExecutor())
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@contextlib.contextmanager
def shortcuts(reclaim: bool) -> Iterator[Callable[[], None]]:
    """Patch the runtime for one synth; yields `track_settings`, to call once the mocks are set.

    `reclaim=False` (a CLI process that exits soon) skips the final collection of the runtime's
    garbage, a third of a 100-service synth's time: the objects are frozen, never scanned again.
    """
    import pulumi
    from pulumi import _types
    from pulumi.runtime import resource as runtime_resource
    from pulumi.runtime import settings
    from pulumi.runtime.proto import source_pb2

    # The runtime allocates many cyclic objects (futures, outputs) that all live until the end of
    # the run; repeated collector passes over that growing heap made synth time superlinear
    # (10 services: 6.3 s with the collector, 2.0 s without). One collection at the end instead.
    collecting = gc.isenabled()
    gc.disable()
    # The engine records where in the program each resource was created: a full traceback per
    # registration, about a fifth of a synth's time, that the mock monitor never reads.
    stack_trace = runtime_resource._get_stack_trace
    runtime_resource._get_stack_trace = source_pb2.StackTrace
    # A pure function of a type hint, called for every serialised property.
    unwrap_type = _types.unwrap_type
    _types.unwrap_type = functools.lru_cache(maxsize=None)(unwrap_type)
    # Outputs are tracked so the run waits for every one before it ends (a resource made inside an
    # apply must still register). Same bookkeeping, minus the context-variable lookups and the
    # lock: with the inline executor everything runs on one thread.
    track = pulumi.Output._track
    pending: set[Any] = set()

    def done(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            pending.discard(future)  # failed ones stay, for the run's end to re-raise

    def plain_track(output: Any) -> None:
        pending.add(output._data)
        output._data.add_done_callback(done)

    def track_settings() -> None:
        nonlocal pending
        pending = settings.SETTINGS.outputs  # the set the run's end waits on, made by set_mocks

    pulumi.Output._track = plain_track  # type: ignore[method-assign,assignment]
    try:
        yield track_settings
    finally:
        pulumi.Output._track = track  # type: ignore[method-assign]
        _types.unwrap_type = unwrap_type
        runtime_resource._get_stack_trace = stack_trace
        if not reclaim:
            gc.freeze()
        if collecting:
            gc.enable()
