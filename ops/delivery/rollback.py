"""`invoke rollback`: redeploy an earlier release's digests through the deploy path, or break glass.

Pulumi has no rollback: going back means deploying a known-good state again. The target's
images go through `deploy.run` (same preflight, lock, ledger, up and verification); the
schema stays where it is (expand/contract migrations keep the old code working on it).

`--break-glass` is for when Pulumi itself cannot run (backend down, state locked, a broken
program): each ECS service is pointed back at its previous task definition revision through
boto3, and the ledger records that the stack has drifted from its Pulumi state and how to
reconcile it.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from infra.config import StackConfig
from ops.console import err, out
from ops.delivery import Deps, deploy, release_tree
from ops.errors import OpsError

GOOD = ("succeeded", "rolled back")


def run(stack: str, *, to: str | None = None, break_glass: bool = False, dry_run: bool = False,
        deps: Deps) -> Any:
    config = deps.load_config(stack)
    if break_glass:
        return _break_glass(stack, config, to, dry_run, deps)
    from ops.delivery.ledger import config_hash

    with deps.translate_errors():
        ledger = deps.ledger(deps.clients(config.region), stack)
        current = ledger.current()
        target = pick_target(ledger, current, to, stack)
    # The whole release: its commit's program and stack config with its images (release_tree.py).
    with release_tree.at_commit(deps, target.git_sha, target.id) as at:
        elsewhere = at is not deps
        target_config = at.load_config(stack) if elsewhere else config
        images, notes = deploy.rollback_images(target_config, target, fallback=current.images if current else {})
        if elsewhere:
            notes.append(f"redeployed from {target.id}'s commit {target.git_sha[:12]}: its program, stack config "
                         f"and images")
        elif target.config_hash != config_hash(config):
            notes.append(f"config differs from {target.id}'s although the commit is the same: the stack file was "
                         f"changed outside a commit")
        for note in notes:
            err.print(f"note: {note}", markup=False)
        err.print(f"rolling {stack} back to release {target.id}"
                  + (f" (current: {current.id})" if current else ""), markup=False)
        request = deploy.Request(
            stack=stack, images=images, kind="rollback", source=f"release {target.id}", rollback_on_failure=False,
            abandons=current.id if current and current.id != target.id else None, migrate=False,
            notes=[f"rollback to {target.id}", *notes],
        )
        return deploy.run(request, at, dry_run=dry_run)


def pick_target(ledger: Any, current: Any, to: str | None, stack: str) -> Any:
    if to:
        target = ledger.get(to)
        if target.outcome not in GOOD or not target.verified:
            raise OpsError(f"release {to} of {stack} is {target.outcome}"
                           f"{'' if target.verified else ', never verified'}: refusing to roll back to it")
        if current and target.id == current.id:
            raise OpsError(f"release {to} is already the current release of {stack}")
        return target
    if current is None:
        raise OpsError(f"stack {stack} has no succeeded release: nothing to roll back from (nothing changed)")
    before = current.id
    while True:
        target = ledger.last_good(before=before)
        if target is None:
            raise OpsError(f"no verified release of {stack} before {current.id} runs different images: nothing "
                           f"to roll back to (nothing changed); `invoke releases --stack {stack}` lists them")
        # A release with the current digests would change nothing: keep looking further back.
        if target.images != current.images:
            return target
        before = target.id


def _break_glass(stack: str, config: StackConfig, to: str | None, dry_run: bool, deps: Deps) -> Any:
    if to:
        raise OpsError("--break-glass goes back one task definition revision per service; --to needs "
                       "Pulumi (run `invoke rollback --to` once Pulumi works again)")
    with deps.translate_errors():
        clients = deps.clients(config.region)
        ledger = deps.ledger(clients, stack)
        cluster = find_cluster(clients.ecs, stack)
        services = service_names(clients.ecs, cluster)
        if not services:
            raise OpsError(f"cluster {cluster} of {stack} has no ECS services: nothing to roll back")
        current = ledger.current()
        good = ledger.last_good(before=current.id) if current else None
        reconcile = (f"`invoke rollback --stack {stack} --to {good.id}`" if good
                     else f"`invoke rollback --stack {stack} --to <release>`")
        moves = changed_services(clients.ecs, cluster, services, good)
        moved = sorted(moves) if moves is not None else services
        where = (f"the task definitions of {good.id}" if moves is not None and good
                 else "their previous task definition revisions")
        drift = (f"break-glass: ECS services {', '.join(moved)} of cluster {cluster} were pointed at {where} "
                 f"outside Pulumi; the stack has drifted from its Pulumi state"
                 f"{f' (which still describes {current.id})' if current else ''}. Reconcile once Pulumi runs "
                 f"again: {reconcile} to redeploy a known-good release through Pulumi, or `pulumi refresh "
                 f"--stack {stack}` to accept the drift into the state")
        if dry_run:
            act = deploy.Actions(True)
            act.note(f"acquire the lock of stack {stack}")
            act.note(f"ecs.update_service each of {', '.join(services)} on {cluster} to its previous task "
                     f"definition revision, and wait for stability")
            act.note(f"ledger: record a break-glass release: {drift}")
            return None
        with deps.lock(clients, stack, deps.caller(clients)) as lock:
            ledger.fenced_by(lock)
            release = ledger.begin(deps.git.sha(), current.images if current else {}, _hash(config),
                                   "break-glass", replaces=current.id if current else None, notes=[drift])
            lock.attach(release.id)
            try:
                if moves is None:
                    notes = deps.rollback_services(clients, cluster, services)
                else:
                    # Only the services whose task definition changed since the last good release
                    # move, each to exactly the revision that release ran.
                    notes = deps.rollback_services(clients, cluster, sorted(moves), task_definitions=moves)
                running = running_images(clients.ecs, cluster, services, [s.name for s in config.services])
            except BaseException as exc:
                ledger.finish(release.id, "failed", verified=False, notes=[deploy.describe(exc)])
                raise
            ledger.finish(release.id, "succeeded", verified=False,
                          notes=[*notes, f"now running: {running}" if running else "running images unknown"])
    err.print(f"[yellow]{escape(drift)}[/yellow]")
    out.print(f"{stack}: break-glass rollback recorded as release {release.id}", markup=False)
    return release


def changed_services(ecs: Any, cluster: str, services: list[str], good: Any) -> dict[str, str] | None:
    """ECS service -> the task definition the last good release ran, for each service that now runs
    another one; None when that release recorded no task definitions (then every service goes back
    one revision). Refuses when nothing changed."""
    from ops.delivery.breakglass import family_revision

    recorded = list(getattr(good, "task_definitions", {}).values()) if good else []
    if not recorded:
        return None
    by_family = {family_revision(arn)[0]: arn for arn in recorded}
    moves = {}
    for svc in ecs.describe_services(cluster=cluster, services=services).get("services", []):
        now = svc["taskDefinition"]
        then = by_family.get(family_revision(now)[0])
        if then and then != now:
            moves[svc["serviceName"]] = then
    if not moves:
        raise OpsError(f"every service of cluster {cluster} already runs the task definitions of {good.id}: "
                       f"nothing to move")
    return moves


def find_cluster(ecs: Any, stack: str) -> str:
    """The stack's ECS cluster without Pulumi: by its tags, else by the services layer's name."""
    arns = ecs.list_clusters().get("clusterArns") or []
    if not arns:
        raise OpsError(f"no ECS cluster in this account and region for stack {stack}")
    clusters = ecs.describe_clusters(clusters=arns, include=["TAGS"]).get("clusters") or []
    for cluster in clusters:
        tags = {t.get("key"): t.get("value") for t in cluster.get("tags") or []}
        if tags.get("project") == "refarch" and tags.get("stack") == stack:
            return cluster["clusterName"]
    prefix = f"refarch-{stack}"
    named = [c["clusterName"] for c in clusters if c["clusterName"] == prefix or c["clusterName"].startswith(prefix + "-")]
    if len(named) == 1:
        return named[0]
    raise OpsError(f"cannot tell which ECS cluster belongs to stack {stack} (no cluster tagged stack={stack}; "
                   f"named {prefix}*: {named or 'none'})")


def service_names(ecs: Any, cluster: str) -> list[str]:
    arns: list[str] = []
    for page in ecs.get_paginator("list_services").paginate(cluster=cluster):
        arns += page.get("serviceArns") or []
    return sorted(arn.rsplit("/", 1)[-1] for arn in arns)


def running_images(ecs: Any, cluster: str, services: list[str], names: list[str]) -> dict[str, str]:
    """Config service name -> image of its container in the task definition each service now uses."""
    found: dict[str, str] = {}
    for svc in ecs.describe_services(cluster=cluster, services=services).get("services") or []:
        task_def = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
        for container in task_def.get("containerDefinitions") or []:
            if container.get("name") in names:
                found[container["name"]] = container.get("image", "")
    return found


def _hash(config: StackConfig) -> str:
    from ops.delivery.ledger import config_hash

    return config_hash(config)
