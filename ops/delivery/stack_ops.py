"""Whole-stack operations: `invoke destroy`, `invoke drift`, `invoke releases`."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.table import Table

from ops.console import err, out
from ops.delivery import Deps, deploy
from ops.delivery.pulumi_adapter import UpProgress
from ops.errors import OpsError

NO_DRIFT, DRIFT = 0, 2


# --- destroy ---------------------------------------------------------------------------------

def destroy(stack: str, *, force: bool = False, yes: bool = False, dry_run: bool = False, deps: Deps) -> bool:
    """Destroy every resource of the stack; returns True when it did."""
    config = deps.load_config(stack)
    if config.delivery.protected and not force:
        raise OpsError(f"stack {stack} is protected (delivery.protected): destroy refused; pass --force and "
                       f"confirm the stack name if you really mean to delete it")
    pulumi = deps.pulumi().select(stack)
    resources = pulumi.resources()
    if not resources:
        out.print(f"{stack}: no resources in the stack's state: nothing to destroy", markup=False)
        return False
    show_resources(stack, resources)
    if dry_run:
        deploy.Actions(True).note(f"pulumi destroy --stack {stack} ({len(resources)} resources)")
        return False
    if not yes:
        if not deps.is_tty():
            raise OpsError("destroy needs the stack name typed at a terminal; in automation pass --yes "
                           "(and --force for a protected stack)")
        answer = deps.prompt(f"type the stack name ({stack}) to destroy these {len(resources)} resources: ")
        if answer.strip() != stack:
            raise OpsError(f"confirmation {answer.strip()!r} does not match {stack!r}: nothing destroyed")
    with deps.translate_errors():
        clients = deps.clients(config.region)
        # A deploy's verification or rollback must not run against a stack being deleted.
        with deps.lock(clients, stack, deps.caller(clients)):
            progress = UpProgress(f"destroy {stack}", total=len(resources))
            try:
                pulumi.destroy(on_event=progress)
            finally:
                progress.close()
    out.print(f"{stack}: destroyed", markup=False)
    return True


def show_resources(stack: str, resources: list[dict[str, Any]]) -> None:
    by_type = Counter(r["type"] for r in resources)
    err.print(f"{stack}: {len(resources)} resources would be destroyed:", markup=False)
    for kind, n in sorted(by_type.items()):
        err.print(f"  {n:>3} {kind}", markup=False, highlight=False)
    protected = [r["urn"].rsplit("::", 1)[-1] for r in resources if r.get("protect")]
    if protected:
        err.print(f"  protected in the state ({', '.join(protected)}): Pulumi refuses to delete these until "
                  f"`pulumi state unprotect`", markup=False)


# --- drift -----------------------------------------------------------------------------------

def drift(stack: str, *, dry_run: bool = False, deps: Deps) -> int:
    """0: the cloud matches the state; 2: drift (listed). Errors raise OpsError (exit 1)."""
    deps.load_config(stack)
    if dry_run:
        deploy.Actions(True).note(f"pulumi refresh --preview-only --stack {stack} (changes nothing)")
        return NO_DRIFT
    found = deps.pulumi().select(stack).refresh(preview_only=True)
    if not found.has_drift:
        out.print(f"{stack}: no drift", markup=False)
        return NO_DRIFT
    changes = ", ".join(f"{op} {n}" for op, n in sorted(found.changes.items()) if op != "same" and n)
    out.print(f"{stack}: drift ({changes or f'{len(found.drifted)} resources'})", markup=False)
    for step in found.drifted:
        diffs = f" ({', '.join(step['diffs'])})" if step.get("diffs") else ""
        out.print(f"  {step['op']:<8} {step['type']} {step['urn'].rsplit('::', 1)[-1]}{diffs}",
                  markup=False, highlight=False)
    return DRIFT


# --- releases --------------------------------------------------------------------------------

def releases(stack: str, *, limit: int = 20, deps: Deps) -> list[Any]:
    config = deps.load_config(stack)
    with deps.translate_errors():
        ledger = deps.ledger(deps.clients(config.region), stack)
        history = ledger.history(limit=limit)
        interrupted = {r.id for r in ledger.interrupted()}
    if not history:
        out.print(f"{stack}: no releases yet", markup=False)
        return []
    out.print(releases_table(stack, history, interrupted))
    if interrupted:
        err.print(f"[yellow]{len(interrupted)} release(s) never finished (crashed or killed run): the next deploy "
                  f"marks them failed[/yellow]")
    return history


def releases_table(stack: str, history: list[Any], interrupted: set[str]) -> Table:
    table = Table(title=f"releases of {stack} (newest first)")
    for column in ("id", "kind", "outcome", "verified", "git", "images", "who", "when", "replaces"):
        table.add_column(column, overflow="fold")
    for rel in history:
        outcome = rel.outcome + (" (INTERRUPTED)" if rel.id in interrupted else "")
        style = {"succeeded": "green", "failed": "red", "rolled back": "yellow"}.get(rel.outcome, "magenta")
        table.add_row(rel.id, rel.kind, f"[{style}]{outcome}[/{style}]", "yes" if rel.verified else "no",
                      rel.git_sha[:7], short_images(rel.images), _who(rel.actor), rel.started_at,
                      rel.replaces or "")
    return table


def short_images(images: dict[str, str]) -> str:
    """`products=sha256:1a2b3c4d`: enough of the digest to tell releases apart."""
    return "\n".join(f"{name}={ref.rpartition('@')[2][:15]}" for name, ref in sorted(images.items()))


def _who(actor: str) -> str:
    # arn:aws:sts::123:assumed-role/Role/session -> Role/session
    return actor.split(":assumed-role/")[-1].split(":user/")[-1]
