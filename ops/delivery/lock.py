"""One delivery run per stack at a time: a lease in the DynamoDB lock table (C1), kept alive all run.

Pulumi's own backend lock covers `up` only; verification, automatic rollback and break-glass run
outside it, so a second deploy could start between them.

The lock item of a stack (`refarch-deploy-locks`, key `stack`) is never deleted: releasing it sets
its expiry to 0. Every state change is one conditional write, so there is no takeover state that a
run dying half-way could leave behind:
- acquire: `UpdateItem` if the item is absent or expired; it bumps `fence`, the fencing token,
  which only ever increases. Of two racing runs exactly one write succeeds.
- renew (a heartbeat thread, all through migrations, `up` and verification): only if this run's
  `owner_id` and `fence` are still there and the lease has not expired: a holder that was presumed
  dead (expired) cannot extend it, even if it wakes up before anyone else took it.
- release: only if still ours. The ledger's writes are conditioned on the fence too (ledger.py), so
  a run that lost its lock can no longer record anything.
Expiry compares the writer's clock: keep clocks in sync (NTP).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from ops.console import err
from ops.delivery.aws import Clients, error_code, translate_errors
from ops.errors import OpsError

# Contract C1 (ci/bootstrap/delivery_tables.py creates both, once per account).
LOCK_TABLE = "refarch-deploy-locks"
DEFAULT_TTL = 600  # a dead run holds its stack this long at most; a live one renews every TTL / 4


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ms_iso(ms: int) -> str:
    return iso(datetime.fromtimestamp(ms / 1000, UTC))


def _record(item: dict[str, Any]) -> dict[str, Any]:
    """A lock item as a plain record: owner, since, expires, release, token (the fence), host."""
    def s(name: str) -> str | None:
        return item[name]["S"] if name in item and "S" in item[name] else None

    expires = int(item.get("expires_at", {}).get("N", "0"))
    return {"owner": s("owner"), "since": s("since"), "expires": _ms_iso(expires), "expires_ms": expires,
            "release": s("release"), "token": int(item.get("fence", {}).get("N", "0")),
            "owner_id": s("owner_id"), "host": s("host")}


def read_holder(aws: Clients, stack: str) -> dict[str, Any] | None:
    """The current lease of `stack`, or None if free (never locked, or released)."""
    with translate_errors(f"reading the lock of stack {stack}"):
        item = aws.dynamodb.get_item(TableName=LOCK_TABLE, Key={"stack": {"S": stack}},
                                     ConsistentRead=True).get("Item")
    if not item or int(item.get("expires_at", {}).get("N", "0")) == 0:
        return None
    return _record(item)


def is_expired(holder: dict[str, Any], now: datetime | None = None) -> bool:
    try:
        return parse_iso(str(holder["expires"])) <= (now or utcnow())
    except (KeyError, ValueError):
        return True


class StackLock:
    """`with StackLock(aws, "dev", owner=caller()): ...` holds the stack for the whole delivery run."""

    def __init__(self, clients: Clients, stack: str, owner: str, ttl_seconds: int = DEFAULT_TTL,
                 *, release_id: str | None = None, heartbeat_seconds: float | None = None):
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0")
        self.aws = clients
        self.stack = stack
        self.owner = owner
        self.ttl_seconds = ttl_seconds
        self.release_id = release_id
        self.owner_id = uuid.uuid4().hex  # this run, whoever `owner` is (one person, two terminals)
        self.fence: int | None = None
        self.held = False
        self.lost: str | None = None  # why the heartbeat found the lock gone
        self.heartbeat_seconds = heartbeat_seconds if heartbeat_seconds is not None else max(ttl_seconds / 4, 0.05)
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @property
    def key(self) -> dict[str, Any]:
        return {"stack": {"S": self.stack}}

    # -- public API ------------------------------------------------------------------------------

    def holder(self) -> dict[str, Any] | None:
        return read_holder(self.aws, self.stack)

    def acquire(self) -> StackLock:
        if self.held:
            return self
        now = _now_ms()
        values = {":now": {"N": str(now)}, ":exp": {"N": str(now + self.ttl_seconds * 1000)},
                  ":me": {"S": self.owner_id}, ":owner": {"S": self.owner}, ":since": {"S": _ms_iso(now)},
                  ":host": {"S": f"{socket.gethostname()} pid {os.getpid()}"}, ":one": {"N": "1"}}
        names = {"#s": "stack", "#r": "release"}
        sets = "owner_id = :me, #o = :owner, since = :since, expires_at = :exp, host = :host"
        if self.release_id:
            values[":rel"] = {"S": self.release_id}
            sets += ", #r = :rel"
            update = f"SET {sets} ADD fence :one"
        else:
            update = f"SET {sets} REMOVE #r ADD fence :one"
        names["#o"] = "owner"
        with translate_errors(f"locking stack {self.stack}"):
            try:
                done = self.aws.dynamodb.update_item(
                    TableName=LOCK_TABLE, Key=self.key, UpdateExpression=update,
                    ConditionExpression="attribute_not_exists(#s) OR expires_at <= :now",
                    ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                    ReturnValues="ALL_OLD")
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                current = self.holder()
                if current is None or is_expired(current):
                    raise OpsError(f"stack {self.stack}: the lock changed hands while acquiring it; retry") from None
                raise OpsError(self._refusal(current)) from None
        old = done.get("Attributes") or {}
        self.fence = int(old.get("fence", {}).get("N", "0")) + 1
        self.held, self.lost = True, None
        if old and int(old.get("expires_at", {}).get("N", "0")) != 0:
            stale = _record(old)
            err.print(
                f"[yellow]warning:[/] took over the expired lock of stack {self.stack} held by {stale['owner']} "
                f"since {stale['since']} (release {stale['release'] or 'none recorded'}, expired "
                f"{stale['expires']}); that run is presumed dead: check `invoke releases --stack {self.stack}`")
        return self

    def _refusal(self, holder: dict[str, Any]) -> str:
        release = holder.get("release") or "not started yet"
        return (
            f"stack {self.stack} is locked by {holder.get('owner')} since {holder.get('since')} "
            f"(release {release}): another deploy, rollback or promote is running; wait for it to finish "
            f"(the lock expires at {holder.get('expires')} unless its run renews it)"
        )

    def guard(self) -> dict[str, Any]:
        """A TransactWriteItems ConditionCheck: this run still holds the lock with its fence."""
        return {"ConditionCheck": {
            "TableName": LOCK_TABLE, "Key": self.key,
            "ConditionExpression": "owner_id = :me AND fence = :fence AND expires_at > :now",
            "ExpressionAttributeValues": {":me": {"S": self.owner_id}, ":fence": {"N": str(self.fence)},
                                          ":now": {"N": str(_now_ms())}}}}

    def attach(self, release_id: str) -> None:
        """Record which release this run is making, so others are told and the ledger knows it is live."""
        self.release_id = release_id
        self._extend(release_id)

    def renew(self) -> None:
        """Push the expiry `ttl_seconds` from now; refused once the lease expired or changed hands."""
        self._extend(None)

    def check(self) -> None:
        """Raise if the heartbeat found the lock lost: the run must stop before changing anything else."""
        if self.lost:
            raise OpsError(self.lost)

    def _extend(self, release_id: str | None) -> None:
        if not self.held:
            if self.lost:
                raise OpsError(self.lost)
            return
        now = _now_ms()
        values = {":me": {"S": self.owner_id}, ":fence": {"N": str(self.fence)}, ":now": {"N": str(now)},
                  ":exp": {"N": str(now + self.ttl_seconds * 1000)}}
        update = "SET expires_at = :exp"
        names: dict[str, str] = {}
        if release_id:
            values[":rel"] = {"S": release_id}
            update += ", #r = :rel"
            names["#r"] = "release"
        with translate_errors(f"renewing the lock of stack {self.stack}"):
            try:
                self.aws.dynamodb.update_item(
                    TableName=LOCK_TABLE, Key=self.key, UpdateExpression=update,
                    ConditionExpression="owner_id = :me AND fence = :fence AND expires_at > :now",
                    ExpressionAttributeValues=values, **({"ExpressionAttributeNames": names} if names else {}))
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                self.held = False
                self.lost = (f"stack {self.stack}: this run lost its lock (it expired, was taken over or "
                             f"force-unlocked); stopping before changing anything else")
                raise OpsError(self.lost) from None

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Renew every `heartbeat_seconds` in a thread while the body runs (migrations, `up`, bake)."""
        self._start_heartbeat()
        try:
            yield
        finally:
            self._stop_heartbeat()
        self.check()

    def _start_heartbeat(self) -> None:
        if self._beat is not None or self.ttl_seconds == 0:
            return
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.heartbeat_seconds):
                try:
                    self.renew()
                except OpsError as exc:
                    self.lost = self.lost or exc.message
                    return
                except Exception as exc:  # a network blip: the next beat retries before expiry
                    err.print(f"[yellow]warning:[/] renewing the lock of stack {self.stack} failed: {exc}")

        self._beat = threading.Thread(target=beat, name=f"lock-heartbeat-{self.stack}", daemon=True)
        self._beat.start()

    def _stop_heartbeat(self) -> None:
        if self._beat is not None:
            self._stop.set()
            self._beat.join(timeout=30)
            self._beat = None

    def release(self) -> None:
        """Free the stack if this run still holds it; a lock taken over by another run is left alone."""
        self._stop_heartbeat()
        if not self.held:
            return
        self.held = False
        with translate_errors(f"unlocking stack {self.stack}"):
            try:
                self.aws.dynamodb.update_item(
                    TableName=LOCK_TABLE, Key=self.key, UpdateExpression="SET expires_at = :zero",
                    ConditionExpression="owner_id = :me AND fence = :fence",
                    ExpressionAttributeValues={":zero": {"N": "0"}, ":me": {"S": self.owner_id},
                                               ":fence": {"N": str(self.fence)}})
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                current = self.holder()
                err.print(f"[yellow]warning:[/] the lock of stack {self.stack} is now held by "
                          f"{current.get('owner') if current else 'nobody'}; left in place")

    def force_unlock(self) -> dict[str, Any] | None:
        """Free the lock whoever holds it (the fence stays); returns the lease removed (None if free)."""
        with translate_errors(f"force-unlocking stack {self.stack}"):
            try:
                done = self.aws.dynamodb.update_item(
                    TableName=LOCK_TABLE, Key=self.key, UpdateExpression="SET expires_at = :zero",
                    ConditionExpression="attribute_exists(#s) AND expires_at > :zero",
                    ExpressionAttributeNames={"#s": "stack"},
                    ExpressionAttributeValues={":zero": {"N": "0"}}, ReturnValues="ALL_OLD")
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                return None
        self.held = False
        return _record(done["Attributes"])

    def __enter__(self) -> StackLock:
        self.acquire()
        self._start_heartbeat()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
