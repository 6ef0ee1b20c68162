"""`invoke deploy`: preflight, lock, ledger, migrations, up, verification, automatic rollback.

The one path every change to a stack's images takes: a deploy from a build manifest, a manual
rollback (`rollback.py`) and a promotion (`promote.py`) all build a `Request` and call `run()`.

Preflight, in this order, each failure an OpsError before anything changes: config valid (with
the new images), clean tree, allowed branch on protected stacks, a digest for every built
service, every digest present in ECR, the stack lock, interrupted releases reported and marked.

Migrations run before the services switch: a targeted `up` updates only the migration task
definitions (their URNs are stack outputs) to the new image, a one-off Fargate task runs it,
and only a zero exit lets the full `up` proceed. A targeted up is the one way to get the new
image into a task definition without touching the services; running the migration from the
service's own task definition would need the service updated first. On the very first deploy
no migration task definition exists yet (nor the roles, log group and repository it needs), so
the full `up` runs first and the migration right after, before verification.

--dry-run: reads run for real (config, git, manifest, ECR, ledger, lock holder, stack outputs);
every write (lock, ledger, stack config, up, run_task) is printed instead of made.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from rich.markup import escape

from infra.config import StackConfig, parse
from ops.console import err, out
from ops.delivery import Deps, manifest
from ops.delivery.migrations import prepare_migrations, run_migrations
from ops.delivery.pulumi_adapter import full_up
from ops.errors import OpsError

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@dataclass
class Request:
    """What to deploy to which stack, and why."""

    stack: str
    images: dict[str, str]
    kind: str = "deploy"  # deploy | rollback | promote
    source: str = ""  # where the images come from, for the ledger and messages
    built_from: str | None = None  # commit the images were built from, when known
    rollback_on_failure: bool | None = None  # None: the stack's delivery.rollback_on_failure
    abandons: str | None = None  # rollback: the release it replaces, marked "rolled back" on success
    migrate: bool = True  # rollbacks skip them: expand/contract schemas never need going back
    notes: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    release: Any  # the ledger record of the succeeded, verified release


def deploy(stack: str, *, manifest_path: Path, no_rollback: bool = False, dry_run: bool = False,
           deps: Deps) -> Outcome | None:
    deps.load_config(stack)  # a bad stack file is reported before anything else is read
    built = manifest.read(manifest_path)
    return run(Request(stack=stack, images=built.images, kind="deploy", source=f"manifest {manifest_path}",
                       built_from=built.git_sha, rollback_on_failure=False if no_rollback else None),
               deps, dry_run=dry_run)


# --- the one deploy path ---------------------------------------------------------------------

def run(req: Request, deps: Deps, dry_run: bool = False) -> Outcome | None:
    config = preflight_local(req, deps)
    act = Actions(dry_run)
    with deps.translate_errors():
        clients = deps.clients(config.region)
        missing = deps.missing_digests(clients, req.images)
        if missing:
            raise OpsError(f"not in ECR, refusing to deploy {req.stack}: " + "; ".join(missing)
                           + " (build and push them first: `invoke build --push`)")
        ledger = deps.ledger(clients, req.stack)
        owner = deps.caller(clients)
        lock = deps.lock(clients, req.stack, owner)
        if dry_run:
            holder = lock.holder()
            if holder:
                err.print(f"would be refused: stack {req.stack} is locked: {holder}", markup=False)
            act.note(f"acquire the lock of stack {req.stack} as {owner}")
            _report_interrupted(ledger, act)
            _plan(req, config, act)
            return None
        # The CLI and the stack must exist before anything is locked or recorded.
        stack = deps.pulumi().select(req.stack)
        with lock:  # renewed by its heartbeat all through migrations, `up` and the bake
            ledger.fenced_by(lock)  # a run that lost the lock can record nothing more
            _report_interrupted(ledger, act)
            return _locked(req, config, clients, ledger, lock, stack, deps)


def task_definitions(outputs: dict[str, Any]) -> dict[str, str]:
    """service -> the task definition ARN the stack now runs (from its outputs)."""
    services = outputs.get("services") or {}
    return {name: str(svc["task_definition_arn"]) for name, svc in services.items()
            if isinstance(svc, dict) and svc.get("task_definition_arn")}


def _locked(req: Request, config: StackConfig, clients: Any, ledger: Any, lock: Any, stack: Any,
            deps: Deps) -> Outcome:
    from ops.delivery.ledger import config_hash

    current = ledger.current()
    head = deps.git.sha()
    notes = list(req.notes)
    if req.source:
        notes.append(f"images from {req.source}")
    if req.built_from and req.built_from != head:
        notes.append(f"images built from {req.built_from[:12]}, infrastructure code at {head[:12]}")
    release = ledger.begin(head, req.images, config_hash(config), req.kind,
                           replaces=current.id if current else None, notes=notes)
    lock.attach(release.id)  # others are told which release holds the stack
    err.print(f"release {release.id}: {req.kind} of {req.stack}", markup=False)
    try:
        stack.set_images(req.images)
        switched = False  # do the services run the new images yet?
        migrating = [s for s in config.services if s.migrate_command] if req.migrate else []
        if migrating:
            switched = prepare_migrations(stack, req.stack, migrating)
            try:
                run_migrations(clients, stack.outputs(), migrating, deps, services_touched=switched)
            except BaseException:
                if current and not switched:
                    # The services still run the current release: make the config say so again.
                    stack.set_images(current.images)
                raise
        if not switched:
            full_up(stack, req.stack)
        lock.renew()  # the bake window starts now: give it the lock's full TTL
        outputs = stack.outputs()
        publish_web_client(clients, outputs)
        report = verify_outputs(outputs, clients, config, deps)
    except BaseException as exc:
        _record_failure(ledger, release.id, exc)
        raise
    if report.ok:
        ledger.finish(release.id, "succeeded", verified=True, task_definitions=task_definitions(outputs))
        if req.abandons:
            abandoned = ledger.get(req.abandons)
            ledger.finish(req.abandons, "rolled back", verified=abandoned.verified,
                          notes=[f"rolled back by {release.id}"])
        out.print(f"{req.stack}: release {release.id} deployed and verified", markup=False)
        return Outcome(ledger.get(release.id))
    failures = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
    # A release ECS rolled back never ran: failed and unverified, so no rollback or promotion takes it.
    by_ecs = [f"rolled back by ECS: {svc}: {why}" for svc, why in getattr(report, "rolled_back", {}).items()]
    ledger.finish(release.id, "failed", verified=False,
                  notes=[*by_ecs, *(f"verification failed: {f}" for f in failures)])
    summary = "; ".join(failures)  # the checks already printed themselves live
    enabled = config.delivery.rollback_on_failure if req.rollback_on_failure is None else req.rollback_on_failure
    if req.kind == "rollback":
        raise OpsError(f"rollback release {release.id} of {req.stack} failed verification ({summary}); "
                       f"try `invoke rollback --stack {req.stack} --to <release>` or --break-glass")
    if not enabled:
        raise OpsError(f"release {release.id} of {req.stack} failed verification ({summary}); automatic "
                       f"rollback is off: `invoke rollback --stack {req.stack}` to go back")
    rollback = _auto_rollback(release, config, stack, clients, ledger, lock, deps, head, summary)
    raise OpsError(f"release {release.id} of {req.stack} failed verification ({summary}); rolled back to "
                   f"release {rollback.replaces_target} as release {rollback.release.id} "
                   f"({'verified' if rollback.ok else 'the ROLLBACK ALSO FAILED verification'})")


@dataclass
class _Rollback:
    release: Any
    replaces_target: str
    ok: bool


def _auto_rollback(failed: Any, config: StackConfig, stack: Any, clients: Any, ledger: Any, lock: Any,
                   deps: Deps, head: str, summary: str) -> _Rollback:
    """Redeploy the last good release as a whole, as `invoke rollback` does (release_tree.py).

    Its commit's program and stack config with its images; when that commit is not here, a
    refusal that names why, before anything changes (the failed release stays recorded failed).
    """
    from ops.delivery import release_tree
    from ops.delivery.ledger import config_hash

    good = ledger.last_good(before=failed.id)
    if good is None:
        raise OpsError(f"release {failed.id} of {failed.stack} failed verification ({summary}) and there is no "
                       f"earlier verified release to roll back to: the stack runs the failed release; fix "
                       f"forward, or `invoke rollback --stack {failed.stack} --break-glass`")
    with contextlib.ExitStack() as scope:
        try:
            at = scope.enter_context(release_tree.at_commit(deps, good.git_sha, good.id))
        except OpsError as exc:
            raise OpsError(f"release {failed.id} of {failed.stack} failed verification ({summary}) and stays "
                           f"recorded as failed; the automatic rollback to {good.id} is refused, nothing was "
                           f"changed: {exc.message}") from None
        elsewhere = at is not deps
        target_config = at.load_config(failed.stack) if elsewhere else config
        images, notes = rollback_images(target_config, good, fallback=failed.images)
        if images == failed.images and not elsewhere:
            raise OpsError(f"release {failed.id} of {failed.stack} failed verification ({summary}) with the digests "
                           f"of the last good release {good.id}: the cause is the infrastructure change, not the "
                           f"images, so there is nothing to roll back by digest; revert the commit and deploy again")
        gone = deps.missing_digests(clients, images)
        if gone:
            raise OpsError(f"release {failed.id} of {failed.stack} failed verification ({summary}); the images of "
                           f"the last good release {good.id} are no longer in ECR ({'; '.join(gone)}): roll back "
                           f"with `invoke rollback --stack {failed.stack} --to <release>` or --break-glass")
        if elsewhere:
            notes.append(f"redeployed from {good.id}'s commit {good.git_sha[:12]}: its program, stack config and "
                         f"images")
            stack = at.pulumi().select(failed.stack)  # that commit's program, in its own tree
        release = ledger.begin(at.git.sha() if elsewhere else head, images, config_hash(target_config), "rollback",
                               replaces=failed.id, notes=[f"automatic rollback of {failed.id} (verification "
                                                          f"failed) to {good.id}", *notes])
        lock.attach(release.id)
        err.print(f"verification failed: rolling back to release {good.id} (release {release.id})", markup=False)
        try:
            stack.set_images(images)
            full_up(stack, failed.stack)
            lock.renew()
            report = verify_outputs(stack.outputs(), clients, target_config, deps)
        except BaseException as exc:
            _record_failure(ledger, release.id, exc)
            raise
    ledger.finish(release.id, "succeeded" if report.ok else "failed", verified=report.ok,
                  notes=[] if report.ok else [f"verification failed: {c.name}: {c.detail}"
                                              for c in report.checks if not c.ok])
    return _Rollback(release, good.id, report.ok)


def rollback_images(config: StackConfig, target: Any, fallback: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The target release's images for the services the config still builds.

    A service the target release predates keeps its `fallback` image (there is nothing older to
    go back to); a service since removed is dropped (the config would reject its image).
    """
    built = [s.name for s in config.services if s.build]
    images, notes = {}, []
    for name in built:
        if name in target.images:
            images[name] = target.images[name]
        elif name in fallback:
            images[name] = fallback[name]
            notes.append(f"{name}: not in {target.id}; keeps {fallback[name]}")
    return images, notes


# --- preflight -------------------------------------------------------------------------------

def preflight_local(req: Request, deps: Deps) -> StackConfig:
    """The checks that need no cloud: config (with the images), tree, branch, image coverage."""
    config = deps.load_config(req.stack)
    config = with_images(config, req.stack, req.images)
    dirty = blocking_changes(deps.git, req.stack)
    if dirty:
        raise OpsError(f"the working tree has uncommitted changes ({', '.join(dirty[:5])}"
                       f"{' ...' if len(dirty) > 5 else ''}): a release must be reproducible from its commit")
    if config.delivery.protected:
        branch = deps.git.branch()
        allowed = config.delivery.allowed_branches
        if branch is None or not any(fnmatch.fnmatchcase(branch, pattern) for pattern in allowed):
            raise OpsError(f"stack {req.stack} is protected: deploys only from {', '.join(allowed)} "
                           f"(this checkout is on {branch or 'a detached HEAD'})")
    uncovered = [s.name for s in config.services if s.build and s.name not in req.images]
    if uncovered:
        raise OpsError(f"no image digest for {', '.join(uncovered)} in {req.source or 'the request'}: "
                       f"build every service (`invoke build --push --stack {req.stack}`)")
    return config


def with_images(config: StackConfig, stack: str, images: dict[str, str]) -> StackConfig:
    """The config as the deploy will set it, validated again (digest format, known services)."""
    values: dict[str, object] = {f"refarch:{k}": v for k, v in config.model_dump(mode="json").items() if k != "region"}
    values["aws:region"] = config.region
    values["refarch:images"] = images
    return parse(values, stack, f"stacks/Pulumi.{stack}.yaml with the deployed images")


def blocking_changes(git: Any, stack: str) -> list[str]:
    """Uncommitted paths, except the stack file when only its `refarch:images` changed.

    Deploy itself writes the digests into stacks/Pulumi.<stack>.yaml (`pulumi config set`), so
    the next deploy from the same checkout must not count that as a dirty tree.
    """
    dirty = git.dirty_paths()
    own = f"stacks/Pulumi.{stack}.yaml"
    if own in dirty and _only_images_changed(git, own):
        dirty.remove(own)
    return dirty


def _only_images_changed(git: Any, path: str) -> bool:
    committed = git.show(path)
    try:
        current = (git.root / path).read_text()
        before, after = (yaml.safe_load(text or "") or {} for text in (committed, current))
    except (OSError, yaml.YAMLError):
        return False
    if committed is None or not isinstance(before, dict) or not isinstance(after, dict):
        return False
    return _without_images(before) == _without_images(after)


def _without_images(document: dict[str, Any]) -> dict[str, Any]:
    config = {k: v for k, v in (document.get("config") or {}).items() if k != "refarch:images"}
    return {**document, "config": config}


def _report_interrupted(ledger: Any, act: Actions) -> None:
    for rel in ledger.interrupted():
        err.print(f"[yellow]{escape(f'release {rel.id} ({rel.kind} by {rel.actor}, started {rel.started_at})')} "
                  f"never finished: its run crashed or was killed. The stack may be partly updated; this run's "
                  f"`up` reconciles it.[/yellow]")
        act.do(f"mark release {rel.id} failed (interrupted)", functools.partial(ledger.mark_interrupted, rel.id))


def _plan(req: Request, config: StackConfig, act: Actions) -> None:
    images = json.dumps(req.images, sort_keys=True)
    act.note(f"ledger: begin a {req.kind} release of {req.stack} with {images}")
    act.note(f"pulumi config set refarch:images '{images}' --stack {req.stack}")
    migrating = [s.name for s in config.services if s.migrate_command] if req.migrate else []
    if migrating:
        act.note(f"migrations of {', '.join(migrating)}: pulumi up --target <migration task definition URNs> "
                 f"(the full up first on a stack's first deploy), then ecs.run_task (FARGATE, private subnets, "
                 f"the service's security group, no public IP) and wait; a non-zero exit stops here")
    act.note(f"pulumi up --stack {req.stack}")
    act.note(f"verify: services stable, ECS's deployment SUCCESSFUL on this release's task definitions, targets "
             f"healthy, smoke GET of {', '.join(s.smoke_url_path for s in config.services)} through the gateway, no "
             f"alarm into ALARM since the deployment started ({config.delivery.bake_seconds}s pipeline bake only "
             f"where ECS did not watch its alarms)")
    act.note("ledger: finish succeeded+verified; on failed verification "
             + ("roll back to the last good release" if (req.rollback_on_failure
                                                          if req.rollback_on_failure is not None
                                                          else config.delivery.rollback_on_failure)
                and req.kind != "rollback" else "stop (no automatic rollback)"))


# --- migrations ------------------------------------------------------------------------------

# --- up, verification ------------------------------------------------------------------------

def publish_web_client(clients: Any, outputs: dict[str, Any]) -> None:
    """The web client of this commit to the stack's client bucket (ops/delivery/web_client.py), after
    `up` so the bucket exists and before verification so the smoke check sees this release's page."""
    bucket = outputs.get("web_client_bucket")
    if not bucket:
        return
    from ops.delivery.web_client import WebClientError, upload_web_client

    try:
        upload = upload_web_client(clients.s3, bucket)
    except WebClientError as exc:
        raise OpsError(f"web client: {exc}") from None
    err.print(f"web client: index.html and {len(upload.assets)} asset(s) to s3://{bucket}", markup=False)


def verify_outputs(outputs: dict[str, Any], clients: Any, config: StackConfig, deps: Deps) -> Any:
    return deps.verify(clients, outputs, bake_seconds=config.delivery.bake_seconds,
                       smoke_timeout=float(config.delivery.smoke_timeout_seconds), services=config.services,
                       on_check=print_check, **deps.verify_options)


def print_check(check: Any) -> None:
    mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
    err.print(f"{mark} {escape(check.name)}: {escape(check.detail)}")


def verify_stack(stack: str, *, dry_run: bool = False, deps: Deps) -> Any:
    """`invoke verify`: the deploy's verification alone, against the live stack outputs."""
    config = deps.load_config(stack)
    if dry_run:
        Actions(True).note(f"read the outputs of {stack}, then verify: services stable, ECS's deployment "
                           f"outcome, targets healthy, smoke checks, the deployment's own alarms")
        return None
    with deps.translate_errors():
        clients = deps.clients(config.region)
        outputs = deps.pulumi().select(stack).outputs()
        report = verify_outputs(outputs, clients, config, deps)
    if not report.ok:
        raise OpsError(f"{stack} failed verification: "
                       + "; ".join(f"{c.name}: {c.detail}" for c in report.checks if not c.ok))
    out.print(f"{stack}: verified ({len(report.checks)} checks)", markup=False)
    return report


# --- helpers ---------------------------------------------------------------------------------

class Actions:
    """Writes go through here: under --dry-run they are printed, not made."""

    def __init__(self, dry_run: bool):
        self.dry_run = dry_run

    def do(self, what: str, fn: Callable[[], T]) -> T | None:
        if self.dry_run:
            self.note(what)
            return None
        return fn()

    def note(self, what: str) -> None:
        err.print(f"would: {what}", markup=False, highlight=False)


def _record_failure(ledger: Any, release_id: str, exc: BaseException) -> None:
    """Mark the release failed; if even that fails, say so without hiding the original error."""
    try:
        ledger.finish(release_id, "failed", verified=False, notes=[describe(exc)])
    except Exception as record_error:  # the original failure matters more: keep raising it
        err.print(f"could not record release {release_id} as failed ({describe(record_error)}); the next run "
                  f"reports it as interrupted", markup=False)


def describe(exc: BaseException) -> str:
    if isinstance(exc, OpsError):
        return exc.message.splitlines()[0]
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
