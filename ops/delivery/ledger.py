"""The release ledger: every deploy, rollback, promote and break-glass of a stack, in DynamoDB (C1).

Table `refarch-releases` (created once per account by ci/bootstrap): partition key `stack`, sort key
`release_id`. Nothing is ever pruned (SSM parameter history kept only 100 versions): a Query with
`ScanIndexForward=False` reads the history newest first, page by page.

Release ids are `<UTC time to the millisecond>-<sha7>` (`20261127T183000.123Z-abc1234`): they sort
by time as plain strings, so "newest" and "older than" never need the records themselves.

While a run holds the stack lock, each write is a transaction with a ConditionCheck on the lock
item's fencing token: a run that lost its lock (expired, taken over) can no longer record anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from infra.config import StackConfig
from ops.console import err
from ops.delivery.aws import Clients, caller, error_code, translate_errors
from ops.delivery.lock import is_expired, iso, parse_iso, read_holder, utcnow
from ops.errors import OpsError

Outcome = Literal["deploying", "succeeded", "failed", "rolled back"]
# "flag": a feature-flag change (ops/flags.py); it changes no image, so the reads that pick a
# release to run, roll back to or promote never return one.
Kind = Literal["deploy", "rollback", "promote", "break-glass", "flag"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
KINDS: tuple[str, ...] = get_args(Kind)

LEDGER_TABLE = "refarch-releases"  # contract C1
_PAGE = 25  # records per Query page: `current()` on a long history reads one page


@dataclass
class Release:
    id: str
    stack: str
    git_sha: str
    images: dict[str, str]
    config_hash: str
    actor: str
    started_at: str
    finished_at: str | None
    outcome: Outcome
    replaces: str | None
    kind: Kind
    verified: bool
    notes: list[str] = field(default_factory=list)
    task_definitions: dict[str, str] = field(default_factory=dict)  # service -> task definition ARN
    ci_run_url: str | None = None
    approver: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Release:
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        # Unknown keys are ignored so that an older pipeline can still read newer records.
        return cls(**{key: value for key, value in data.items() if key in names})

    @property
    def good(self) -> bool:
        return self.outcome == "succeeded" and self.verified


def new_release_id(git_sha: str, now: datetime | None = None) -> str:
    moment = (now or utcnow())
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f".{moment.microsecond // 1000:03d}Z"
    short = re.sub(r"[^0-9a-zA-Z]", "", git_sha)[:7] or "nosha"
    return f"{stamp}-{short}"


def config_hash(config: StackConfig) -> str:
    """sha256 of the canonical JSON of the stack config without `images` (those are the release itself)."""
    data = config.model_dump(mode="json", exclude={"images"})
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def ci_run_url(environ: dict[str, str] | None = None) -> str | None:
    """The CI run making this release (GitHub Actions, GitLab), when there is one."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return env.get("CI_JOB_URL") or env.get("CI_PIPELINE_URL") or None


def approver(environ: dict[str, str] | None = None) -> str | None:
    """Who approved the protected environment (CI passes it as REFARCH_APPROVER), when known."""
    env = os.environ if environ is None else environ
    return env.get("REFARCH_APPROVER") or None


class Ledger:
    def __init__(self, clients: Clients, stack: str):
        self.aws = clients
        self.stack = stack
        self.lock: Any = None  # the StackLock whose fence guards every write, once held

    def fenced_by(self, lock: Any) -> Ledger:
        self.lock = lock
        return self

    # -- writes ----------------------------------------------------------------------------------

    def begin(self, git_sha: str, images: dict[str, str], config_hash: str, kind: Kind,
              replaces: str | None = None, notes: Iterable[str] = ()) -> Release:
        """Record a release as `deploying` before anything changes, so a crash leaves a trace."""
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {KINDS}")
        actor = caller(self.aws)
        with translate_errors(f"recording a release of stack {self.stack}"):
            for _ in range(5):
                now = utcnow()
                release = Release(
                    id=new_release_id(git_sha, now), stack=self.stack, git_sha=git_sha, images=dict(images),
                    config_hash=config_hash, actor=actor, started_at=iso(now), finished_at=None,
                    outcome="deploying", replaces=replaces, kind=kind, verified=False, notes=list(notes),
                    ci_run_url=ci_run_url(), approver=approver(),
                )
                if self._put(release, new=True):
                    return release
                time.sleep(0.002)  # same millisecond, same SHA: the next id differs
        raise OpsError(f"stack {self.stack}: could not allocate a release id; retry")

    def finish(self, release_id: str, outcome: Outcome, verified: bool, notes: Iterable[str] = (),
               task_definitions: dict[str, str] | None = None) -> Release:
        """Set the outcome of a release (also later: `failed` -> `rolled back`); notes are appended."""
        if outcome not in OUTCOMES or outcome == "deploying":
            raise ValueError(f"outcome {outcome!r} is not a final outcome: use succeeded, failed or rolled back")
        release = self.get(release_id)
        release.outcome = outcome
        release.verified = verified
        release.finished_at = release.finished_at or iso(utcnow())
        release.notes = [*release.notes, *notes]
        if task_definitions:
            release.task_definitions = {**release.task_definitions, **task_definitions}
        with translate_errors(f"recording the outcome of release {release_id}"):
            self._put(release, new=False)
        return release

    def mark_interrupted(self, release_id: str) -> Release:
        """Close a crashed run's record as failed; it never proved anything, so it is not verified."""
        release = self.get(release_id)
        if release.outcome != "deploying":
            return release
        note = (f"interrupted: the run stopped before recording an outcome; marked failed at "
                f"{iso(utcnow())} by {caller(self.aws)}; the stack may be part-way through this release")
        return self.finish(release_id, "failed", verified=False, notes=[note])

    def _item(self, release: Release) -> dict[str, Any]:
        # The record whole as JSON (readable by older and newer pipelines alike), plus the
        # attributes a console user filters on.
        return {"stack": {"S": self.stack}, "release_id": {"S": release.id}, "outcome": {"S": release.outcome},
                "git_sha": {"S": release.git_sha}, "record": {"S": release.to_json()}}

    def _put(self, release: Release, new: bool) -> bool:
        """Write the record; False when `new` and the id is taken. Fenced while a lock is held."""
        put = {"TableName": LEDGER_TABLE, "Item": self._item(release),
               "ConditionExpression": "attribute_not_exists(release_id)" if new else "attribute_exists(release_id)"}
        lock = self.lock if self.lock is not None and getattr(self.lock, "held", False) else None
        try:
            if lock is None:
                self.aws.dynamodb.put_item(**put)
            else:
                self.aws.dynamodb.transact_write_items(TransactItems=[lock.guard(), {"Put": put}])
        except Exception as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException" and new:
                return False
            if code == "TransactionCanceledException" and lock is not None:
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]  # type: ignore[attr-defined]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    lock.held = False
                    lock.lost = (f"stack {self.stack}: this run lost its lock (it expired, was taken over or "
                                 f"force-unlocked): release {release.id} was not recorded")
                    raise OpsError(lock.lost) from None
                if new and len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                    return False
            raise
        return True

    # -- reads -----------------------------------------------------------------------------------

    def get(self, release_id: str) -> Release:
        with translate_errors(f"reading release {release_id}"):
            item = self.aws.dynamodb.get_item(
                TableName=LEDGER_TABLE, ConsistentRead=True,
                Key={"stack": {"S": self.stack}, "release_id": {"S": release_id}}).get("Item")
        if not item:
            raise OpsError(f"stack {self.stack} has no release {release_id!r} "
                           f"(list them: invoke releases --stack {self.stack})")
        return Release.from_json(item["record"]["S"])

    def history(self, limit: int = 50, kind: str | None = None) -> list[Release]:
        """Newest first: the releases (flag changes left out), or only the records of `kind`."""
        found: list[Release] = []
        for release in self._newest_first():
            wanted = release.kind == kind if kind else release.kind != "flag"
            if not wanted:
                continue
            if len(found) >= limit:
                break
            found.append(release)
        return found

    def current(self) -> Release | None:
        """The newest succeeded release: what the stack runs now (as far as the ledger knows)."""
        return next((r for r in self._newest_first() if r.outcome == "succeeded" and r.kind != "flag"), None)

    def last_good(self, before: str | None = None) -> Release | None:
        """The newest succeeded and verified release strictly older than release id `before`."""
        return next((r for r in self._newest_first()
                     if r.good and r.kind != "flag" and (before is None or r.id < before)), None)

    def interrupted(self) -> list[Release]:
        """Records still `deploying` that no live run owns: a deploy that crashed or was killed.

        A record is live only while the stack lock is held, unexpired, and by the run making it
        (the lock names the release, or the release began after the lock was taken).
        """
        holder = read_holder(self.aws, self.stack)
        live = holder if holder is not None and not is_expired(holder) else None
        stuck = []
        for release in self._newest_first():
            if release.outcome != "deploying":
                continue
            if live is not None and _owned_by(live, release):
                continue
            stuck.append(release)
        return stuck

    # -- storage ---------------------------------------------------------------------------------

    def _newest_first(self) -> Iterator[Release]:
        """Records read lazily, a page at a time, newest first (the sort key sorts by time)."""
        kwargs: dict[str, Any] = {
            "TableName": LEDGER_TABLE, "KeyConditionExpression": "#s = :s", "ScanIndexForward": False,
            "ExpressionAttributeNames": {"#s": "stack"}, "ExpressionAttributeValues": {":s": {"S": self.stack}},
            "ConsistentRead": True, "Limit": _PAGE,
        }
        while True:
            with translate_errors(f"reading the releases of stack {self.stack}"):
                page = self.aws.dynamodb.query(**kwargs)
            for item in page.get("Items", []):
                try:
                    yield Release.from_json(item["record"]["S"])
                except (KeyError, ValueError, TypeError) as exc:
                    err.print(f"[yellow]warning:[/] skipping unreadable release record "
                              f"{item.get('release_id', {}).get('S')}: {exc}")
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _owned_by(holder: dict[str, Any], release: Release) -> bool:
    if holder.get("release"):
        return holder["release"] == release.id
    try:
        return parse_iso(release.started_at) >= parse_iso(str(holder["since"]))
    except (KeyError, ValueError):
        return False
