"""One delivery run per stack at a time: a lock held in SSM Parameter Store for the whole run.

Pulumi's own backend lock covers `up` only; verification, automatic rollback and break-glass run
outside it, so a second deploy could start between them. The lock lives beside the ledger (same
service, same IAM path) so nothing has to exist before the first deploy.

Acquiring is atomic: `put_parameter(Overwrite=False)` succeeds for exactly one caller. A lock past
its expiry belongs to a run presumed dead; taking it over goes through a one-shot marker parameter
named after the dead holder's token, so of two runs racing for the same expired lock only one wins.
Expiry compares the holder's recorded time with the local clock: keep clocks in sync (NTP).
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from ops.console import err
from ops.delivery.aws import Clients, error_code, translate_errors
from ops.errors import OpsError

ROOT = "/refarch"


def lock_name(stack: str) -> str:
    return f"{ROOT}/{stack}/lock"


def _takeover_name(stack: str, token: str) -> str:
    return f"{ROOT}/{stack}/lock-takeover/{token}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_holder(aws: Clients, stack: str) -> dict[str, Any] | None:
    """The current lock record of `stack` (owner, since, expires, release, token), or None if free."""
    with translate_errors(f"reading the lock of stack {stack}"):
        try:
            value = aws.ssm.get_parameter(Name=lock_name(stack))["Parameter"]["Value"]
        except Exception as exc:
            if error_code(exc) == "ParameterNotFound":
                return None
            raise
    try:
        holder = json.loads(value)
    except ValueError:
        holder = None
    if not isinstance(holder, dict):
        # Unreadable: treat it as held by an unknown run that has already expired.
        return {"owner": "unknown", "since": iso(utcnow()), "expires": iso(datetime.min.replace(tzinfo=UTC)),
                "release": None, "token": "unreadable"}
    return holder


def is_expired(holder: dict[str, Any], now: datetime | None = None) -> bool:
    try:
        return parse_iso(str(holder["expires"])) <= (now or utcnow())
    except (KeyError, ValueError):
        return True


class StackLock:
    """`with StackLock(aws, "dev", owner=caller()): ...` holds the stack for the whole delivery run."""

    def __init__(self, clients: Clients, stack: str, owner: str, ttl_seconds: int = 3600,
                 *, release_id: str | None = None):
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0")
        self.aws = clients
        self.stack = stack
        self.owner = owner
        self.ttl_seconds = ttl_seconds
        self.release_id = release_id
        self.token = uuid.uuid4().hex
        self.held = False

    # -- the record ------------------------------------------------------------------------------

    def _record(self, since: datetime | None = None) -> dict[str, Any]:
        start = since or utcnow()
        return {
            "owner": self.owner,
            "since": iso(start),
            "expires": iso(utcnow() + timedelta(seconds=self.ttl_seconds)),
            "release": self.release_id,
            "token": self.token,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    def _put(self, record: dict[str, Any], overwrite: bool) -> None:
        self.aws.ssm.put_parameter(Name=lock_name(self.stack), Value=json.dumps(record), Type="String",
                                   Overwrite=overwrite, Description=f"delivery lock of stack {self.stack}")

    # -- public API ------------------------------------------------------------------------------

    def holder(self) -> dict[str, Any] | None:
        return read_holder(self.aws, self.stack)

    def acquire(self) -> StackLock:
        if self.held:
            return self
        with translate_errors(f"locking stack {self.stack}"):
            # Two attempts: the holder may release between our failed put and our read.
            for _ in range(2):
                try:
                    self._put(self._record(), overwrite=False)
                    self.held = True
                    return self
                except Exception as exc:
                    if error_code(exc) != "ParameterAlreadyExists":
                        raise
                current = self.holder()
                if current is None:
                    continue
                if not is_expired(current):
                    raise OpsError(self._refusal(current))
                self._take_over(current)
                return self
        raise OpsError(f"stack {self.stack}: the lock changed hands while acquiring it; retry")

    def _take_over(self, stale: dict[str, Any]) -> None:
        stale_token = str(stale.get("token"))
        marker = _takeover_name(self.stack, stale_token)
        try:
            self.aws.ssm.put_parameter(Name=marker, Value=self.owner, Type="String", Overwrite=False)
        except Exception as exc:
            if error_code(exc) == "ParameterAlreadyExists":
                raise OpsError(
                    f"stack {self.stack}: another run is taking over the expired lock of {stale.get('owner')}; retry"
                ) from None
            raise
        try:
            # The marker makes us the only taker of this token; the re-read catches a holder that
            # released (and a new run that locked) in between.
            current = self.holder()
            if current is not None and str(current.get("token")) != stale_token:
                if is_expired(current):
                    raise OpsError(f"stack {self.stack}: the lock changed hands while acquiring it; retry")
                raise OpsError(self._refusal(current))
            self._put(self._record(), overwrite=True)
            self.held = True
        finally:
            self._delete(marker)
        err.print(
            f"[yellow]warning:[/] took over the expired lock of stack {self.stack} held by {stale.get('owner')} "
            f"since {stale.get('since')} (release {stale.get('release') or 'none recorded'}, expired "
            f"{stale.get('expires')}); that run is presumed dead: check `invoke releases --stack {self.stack}`"
        )

    def _refusal(self, holder: dict[str, Any]) -> str:
        release = holder.get("release") or "not started yet"
        return (
            f"stack {self.stack} is locked by {holder.get('owner')} since {holder.get('since')} "
            f"(release {release}): another deploy, rollback or promote is running; wait for it to finish "
            f"(the lock expires at {holder.get('expires')}, after which the next run takes it over)"
        )

    def attach(self, release_id: str) -> None:
        """Record which release this run is making, so others are told and the ledger knows it is live."""
        self.release_id = release_id
        self._rewrite()

    def renew(self) -> None:
        """Push the expiry `ttl_seconds` from now: for runs that outlive their TTL."""
        self._rewrite()

    def _rewrite(self) -> None:
        if not self.held:
            return
        with translate_errors(f"updating the lock of stack {self.stack}"):
            current = self.holder()
            if current is None or current.get("token") != self.token:
                self.held = False
                raise OpsError(f"stack {self.stack}: this run lost its lock (taken over or force-unlocked)")
            self._put(self._record(since=parse_iso(str(current["since"]))), overwrite=True)

    def release(self) -> None:
        """Free the stack if this run still holds it; a lock taken over by another run is left alone."""
        if not self.held:
            return
        self.held = False
        with translate_errors(f"unlocking stack {self.stack}"):
            current = self.holder()
            if current is None:
                return
            if current.get("token") != self.token:
                err.print(f"[yellow]warning:[/] the lock of stack {self.stack} is now held by "
                          f"{current.get('owner')}; left in place")
                return
            self._delete(lock_name(self.stack))

    def force_unlock(self) -> dict[str, Any] | None:
        """Delete the lock whoever holds it; returns the record removed (None if it was free)."""
        with translate_errors(f"force-unlocking stack {self.stack}"):
            previous = self.holder()
            if previous is not None:
                self._delete(lock_name(self.stack))
        self.held = False
        return previous

    def _delete(self, name: str) -> None:
        try:
            self.aws.ssm.delete_parameter(Name=name)
        except Exception as exc:
            if error_code(exc) != "ParameterNotFound":
                raise

    def __enter__(self) -> StackLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
