"""The release ledger: every deploy, rollback, promote and break-glass of a stack, kept in AWS itself.

Storage: SSM Parameter Store, one parameter per release at `/refarch/<stack>/releases/<id>`.
Why SSM rather than a versioned S3 bucket:
- nothing to bootstrap: Parameter Store exists in every account and region, while a bucket would
  have to be created (and protected, and named globally uniquely) before the first deploy, by
  something other than the stack whose releases it records;
- every write keeps a version (`get-parameter-history`): the `deploying` -> `succeeded`
  transition of a record is itself auditable, and CloudTrail names who wrote it;
- `put_parameter(Overwrite=False)` is an atomic create, which the stack lock (lock.py) also uses:
  one service, one IAM path (`ssm:*Parameter*` on `/refarch/<stack>/*`) for the whole pipeline;
- a record is a few hundred bytes; the Intelligent-Tiering tier stores it as a free standard
  parameter and only a record over 4 KB (many services, long notes) becomes an advanced one.

Release ids are `<UTC time to the millisecond>-<sha7>` (`20261127T183000.123Z-abc1234`): they sort
by time as plain strings, so "newest" and "older than" never need the records themselves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from infra.config import StackConfig
from ops.console import err
from ops.delivery.aws import Clients, caller, error_code, translate_errors
from ops.delivery.lock import ROOT, is_expired, iso, parse_iso, read_holder, utcnow
from ops.errors import OpsError

Outcome = Literal["deploying", "succeeded", "failed", "rolled back"]
Kind = Literal["deploy", "rollback", "promote", "break-glass"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
KINDS: tuple[str, ...] = get_args(Kind)

# SSM caps an advanced parameter at 8 KB; notes are trimmed (oldest kept, newest kept) to fit.
MAX_RECORD_BYTES = 8192
_SSM_BATCH = 10  # get_parameters accepts at most 10 names


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


class Ledger:
    def __init__(self, clients: Clients, stack: str):
        self.aws = clients
        self.stack = stack
        self.prefix = f"{ROOT}/{stack}/releases"

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
                )
                try:
                    self._put(release, overwrite=False)
                    return release
                except Exception as exc:
                    if error_code(exc) != "ParameterAlreadyExists":
                        raise
                    time.sleep(0.002)  # same millisecond, same SHA: the next id differs
        raise OpsError(f"stack {self.stack}: could not allocate a release id; retry")

    def finish(self, release_id: str, outcome: Outcome, verified: bool, notes: Iterable[str] = ()) -> Release:
        """Set the outcome of a release (also later: `failed` -> `rolled back`); notes are appended."""
        if outcome not in OUTCOMES or outcome == "deploying":
            raise ValueError(f"outcome {outcome!r} is not a final outcome: use succeeded, failed or rolled back")
        release = self.get(release_id)
        release.outcome = outcome
        release.verified = verified
        release.finished_at = release.finished_at or iso(utcnow())
        release.notes = [*release.notes, *notes]
        with translate_errors(f"recording the outcome of release {release_id}"):
            self._put(release, overwrite=True)
        return release

    def mark_interrupted(self, release_id: str) -> Release:
        """Close a crashed run's record as failed; it never proved anything, so it is not verified."""
        release = self.get(release_id)
        if release.outcome != "deploying":
            return release
        note = (f"interrupted: the run stopped before recording an outcome; marked failed at "
                f"{iso(utcnow())} by {caller(self.aws)}; the stack may be part-way through this release")
        return self.finish(release_id, "failed", verified=False, notes=[note])

    def _put(self, release: Release, overwrite: bool) -> None:
        self.aws.ssm.put_parameter(
            Name=self._name(release.id), Value=_fit(release), Type="String", Overwrite=overwrite,
            Tier="Intelligent-Tiering",
            **({} if overwrite else {"Description": f"{release.kind} of stack {self.stack}"}),
        )

    # -- reads -----------------------------------------------------------------------------------

    def get(self, release_id: str) -> Release:
        with translate_errors(f"reading release {release_id}"):
            try:
                value = self.aws.ssm.get_parameter(Name=self._name(release_id))["Parameter"]["Value"]
            except Exception as exc:
                if error_code(exc) in ("ParameterNotFound", "ValidationException"):
                    raise OpsError(f"stack {self.stack} has no release {release_id!r} "
                                   f"(list them: invoke releases --stack {self.stack})") from None
                raise
        return Release.from_json(value)

    def history(self, limit: int = 50) -> list[Release]:
        """Newest first."""
        found: list[Release] = []
        for release in self._newest_first():
            if len(found) >= limit:
                break
            found.append(release)
        return found

    def current(self) -> Release | None:
        """The newest succeeded release: what the stack runs now (as far as the ledger knows)."""
        return next((r for r in self._newest_first() if r.outcome == "succeeded"), None)

    def last_good(self, before: str | None = None) -> Release | None:
        """The newest succeeded and verified release strictly older than release id `before`."""
        return next((r for r in self._newest_first() if r.good and (before is None or r.id < before)), None)

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

    def _name(self, release_id: str) -> str:
        return f"{self.prefix}/{release_id}"

    def _ids(self) -> list[str]:
        ids: list[str] = []
        kwargs: dict[str, Any] = {
            "ParameterFilters": [{"Key": "Path", "Option": "OneLevel", "Values": [self.prefix]}],
            "MaxResults": 50,
        }
        with translate_errors(f"listing the releases of stack {self.stack}"):
            while True:
                page = self.aws.ssm.describe_parameters(**kwargs)
                ids += [p["Name"].rsplit("/", 1)[-1] for p in page.get("Parameters", [])]
                token = page.get("NextToken")
                if not token:
                    break
                kwargs["NextToken"] = token
        return sorted(ids, reverse=True)

    def _newest_first(self) -> Iterator[Release]:
        """Records fetched lazily, ten at a time: `current()` on a long history reads one batch."""
        ids = self._ids()
        for start in range(0, len(ids), _SSM_BATCH):
            names = [self._name(i) for i in ids[start:start + _SSM_BATCH]]
            with translate_errors(f"reading the releases of stack {self.stack}"):
                values = {p["Name"]: p["Value"] for p in self.aws.ssm.get_parameters(Names=names)["Parameters"]}
            for name in names:
                if name not in values:
                    continue  # deleted between listing and reading
                try:
                    yield Release.from_json(values[name])
                except (ValueError, TypeError) as exc:
                    err.print(f"[yellow]warning:[/] skipping unreadable release record {name}: {exc}")


def _owned_by(holder: dict[str, Any], release: Release) -> bool:
    if holder.get("release"):
        return holder["release"] == release.id
    try:
        return parse_iso(release.started_at) >= parse_iso(str(holder["since"]))
    except (KeyError, ValueError):
        return False


def _fit(release: Release) -> str:
    """The record as stored, with notes trimmed from the middle if it would exceed SSM's limit."""
    text = release.to_json()
    if len(text.encode()) <= MAX_RECORD_BYTES:
        return text
    notes = list(release.notes)
    while notes and len(text.encode()) > MAX_RECORD_BYTES:
        notes.pop(len(notes) // 2)
        trimmed = dataclasses.replace(release, notes=[*notes, "(notes trimmed to fit the 8 KB record limit)"])
        text = trimmed.to_json()
    if len(text.encode()) > MAX_RECORD_BYTES:
        raise OpsError(f"release {release.id}: record exceeds {MAX_RECORD_BYTES} bytes even without notes")
    return text
