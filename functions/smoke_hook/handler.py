"""ECS lifecycle hook: smoke-test a new revision through the test listener rule, before production traffic.

ECS invokes this at POST_TEST_TRAFFIC_SHIFT, when the test rule already forwards to the new
revision and production traffic is all still on the old one. It GETs the service's smoke path and
health path through the gateway with the service's test-route header (which only the test rule
matches), and answers ECS as the ECS developer guide, "Lambda hooks for Amazon ECS service
deployments", specifies:

    "When Amazon ECS invokes your hook, your function must return a JSON object containing a
    `hookStatus` field. You can optionally include `callBackDelay` to control retry timing and
    `hookDetails` to pass data between invocations. If your function doesn't return a valid
    `hookStatus`, or if it fails, Amazon ECS rolls back the deployment."
    "SUCCEEDED - The deployment continues to the next lifecycle stage. FAILED - Amazon ECS rolls
    back the deployment to the last successful service revision. IN_PROGRESS - Amazon ECS invokes
    the function again after a delay."

The event (same guide, "Lifecycle payloads"): `executionId`, `lifecycleStage`, `resourceArn` (the
service deployment), `executionDetails` (`serviceArn`, `targetServiceRevisionArn`,
`testTrafficWeights`, `productionTrafficWeights`) and `hookDetails`: what the service definition
passes (here: service, url, paths, timeoutSeconds, host), merged with what an IN_PROGRESS answer
returned ("Data added to hookDetails at runtime only persists between invocations of the same hook
within a single deployment"). A failed check is retried `ATTEMPTS` times, `RETRY_SECONDS` apart
(the ALB may need a moment to apply the test rule's new weights), then fails the deployment.

Standard library only: the function ships as this one file. It logs no header value.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

SMOKE_STAGE = "POST_TEST_TRAFFIC_SHIFT"
USER_AGENT = "refarch-smoke-hook/1"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to judge (< 400 passes), not something to follow off the test rule."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# Lambda has no proxy; a developer machine running the tests might: never use one.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    stage = event.get("lifecycleStage")
    details = _details(event.get("hookDetails"))
    if stage != SMOKE_STAGE:
        # Registered at POST_TEST_TRAFFIC_SHIFT only, which ECS does not re-invoke during a rollback;
        # anywhere else there is nothing to test and no reason to stop ECS.
        _log("skipped", stage=stage)
        return {"hookStatus": "SUCCEEDED"}
    service = str(details.get("service", ""))
    try:
        checks = _checks(details, service)
    except (KeyError, TypeError, ValueError) as exc:
        # A broken hook configuration is a failed deployment: nothing was tested.
        _log("misconfigured", service=service, error=str(exc))
        return {"hookStatus": "FAILED"}
    failures = [failure for failure in (_get(*check) for check in checks) if failure]
    attempt = int(details.get("attempt", 0)) + 1
    target = (event.get("executionDetails") or {}).get("targetServiceRevisionArn", "")
    if not failures:
        _log("passed", service=service, attempt=attempt, revision=target, paths=[c[1] for c in checks])
        return {"hookStatus": "SUCCEEDED"}
    attempts = int(os.environ.get("ATTEMPTS", "3"))
    if attempt < attempts:
        _log("retrying", service=service, attempt=attempt, of=attempts, revision=target, failures=failures)
        return {"hookStatus": "IN_PROGRESS", "callBackDelay": int(os.environ.get("RETRY_SECONDS", "15")),
                "hookDetails": {"attempt": attempt}}
    _log("failed", service=service, attempt=attempt, revision=target, failures=failures)
    return {"hookStatus": "FAILED"}


def _details(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):  # the service definition holds hookDetails as a JSON document
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return raw if isinstance(raw, dict) else {}


def _checks(details: dict[str, Any], service: str) -> list[tuple[str, str, dict[str, str], float]]:
    """(url, path, headers, timeout) per path; raises on a configuration that cannot be tested."""
    routes = json.loads(os.environ["TEST_ROUTES"])
    headers = {os.environ["TEST_HEADER"]: routes[service], "User-Agent": USER_AGENT}
    if details.get("host"):
        # Host-based rules match the Host header, not the gateway's own name.
        headers["Host"] = str(details["host"])
    base = str(details["url"]).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"url {base!r} is not http(s)")
    timeout = float(details.get("timeoutSeconds", 10))
    paths = [str(p) for p in details["paths"]]
    if not paths or not all(p.startswith("/") for p in paths):
        raise ValueError(f"paths {paths!r} must be non-empty and start with '/'")
    return [(base + path, path, headers, timeout) for path in paths]


def _get(url: str, path: str, headers: dict[str, str], timeout: float) -> str | None:
    """None when GET `url` answers < 400 within `timeout`; else what went wrong (no header values)."""
    started = time.monotonic()
    try:
        with _OPENER.open(urllib.request.Request(url, headers=headers, method="GET"), timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"GET {path}: {reason}"
    took = (time.monotonic() - started) * 1000
    return None if status < 400 else f"GET {path} -> {status} in {took:.0f} ms"


def _log(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}, default=str, sort_keys=True))
