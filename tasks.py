"""Invoke tasks: the one interface for people and CI. Each task parses flags and delegates to `ops`.

Heavy modules (pulumi, pulumi_aws, boto3) are imported inside the tasks that need them, so
`invoke --list` and `invoke --help` stay instant.
"""

from __future__ import annotations

import functools

from invoke import Exit, task


def _friendly(fn):
    """Turn the errors a user can act on into a clean message and exit code, never a traceback.

    Every task takes flags only (`positional=[]`, so `invoke <task> --help` is never read as a
    stack name); a flag without a default is required, which invoke itself does not check.
    """
    import inspect

    required = [name for name, p in list(inspect.signature(fn).parameters.items())[1:]
                if p.default is inspect.Parameter.empty]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from infra.config import ConfigError
        from ops.errors import OpsError

        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
        missing = [name for name in required if bound.get(name) in (None, "")]
        if missing:
            flags = ", ".join(f"--{name.strip('_').replace('_', '-')}" for name in missing)
            raise Exit(f"error: {fn.__name__} needs {flags} (see `invoke {fn.__name__} --help`)", code=1)
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            raise Exit(f"invalid stack config:\n{exc}", code=1) from None
        except OpsError as exc:
            raise Exit(f"error: {exc.message}", code=exc.code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # A synth file that has the right shape but not the right content (hand-edited, another
            # tool's): name the file instead of showing a traceback. Without one it is a bug: re-raise.
            given = [kwargs.get(name) for name in ("synth", "base", "compare") if kwargs.get(name)]
            if not given:
                raise
            raise Exit(f"error: {', '.join(given)}: not a synth output this task can read "
                       f"({type(exc).__name__}: {exc})", code=1) from None

    return wrapper


def _number(flag: str, value, default: int, minimum: int = 0) -> int:
    """An integer flag; invoke would raise a bare ValueError on `--limit abc`, so flags arrive as text."""
    if value is None:
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise Exit(f"error: --{flag} expects a whole number, got {value!r}", code=1) from None
    if number < minimum:
        raise Exit(f"error: --{flag} must be at least {minimum}, got {number}", code=1)
    return number


def _writable(*paths) -> None:
    """Refuse an output path that cannot be written before any work is done for it."""
    from ops.console import check_output

    for path in paths:
        if path:
            check_output(path)


# --- architecture -------------------------------------------------------------------------------

@task(positional=[], help={"stack": "a local stack (refarch:target: local), e.g. local"})
@_friendly
def up(c, stack="local"):
    """Run the whole architecture on this machine's Docker engine; print the gateway and telemetry URLs."""
    from ops import local
    from ops.delivery.pulumi_adapter import PulumiStack

    local.up(stack, PulumiStack())


@task(positional=[], help={"stack": "a local stack (refarch:target: local), e.g. local"})
@_friendly
def local_pin(c, stack="local"):
    """Resolve the local stack's platform images to digests in their registries; write them to the stack file."""
    from ops import local
    from ops.delivery.pulumi_adapter import PulumiStack

    local.pin(stack, PulumiStack(), local.registry_digest)


@task(positional=[], help={"stack": "a local stack (refarch:target: local), e.g. local"})
@_friendly
def down(c, stack="local"):
    """Remove every container, network and volume of a local stack (its secret files stay)."""
    from ops import local
    from ops.delivery.pulumi_adapter import PulumiStack

    local.down(stack, PulumiStack())


@task(positional=[], help={"stack": "stack name (stacks/Pulumi.<stack>.yaml)", "out": "write the synth JSON here"})
@_friendly
def synth(c, stack, out=None):
    """Run the Pulumi program offline under the mock runtime: no CLI, no credentials, no network."""
    from ops.synth import command

    _writable(out)
    command(stack, out)


# --- delivery (issue 3: ops/delivery/) ----------------------------------------------------------
# DELIVERY-TASKS-BEGIN
_STACK = "stack name (stacks/Pulumi.<stack>.yaml)"
_DRY = "print every command and call that would change something; change nothing"


@task(positional=[], help={"stack": _STACK, "service": "build only this service", "push": "push the image to ECR",
            "allow_dirty": "build from uncommitted changes (tagged <sha>-dirty-<time>)",
            "manifest": "where to write the build manifest",
            "base_image": "override the Dockerfile's BASE_IMAGE (default: its digest-pinned official image)",
            "dry_run": _DRY})
@_friendly
def build(c, stack="dev", service=None, push=False, allow_dirty=False, manifest="out/manifest.json",
          base_image=None, dry_run=False):
    """docker buildx build each service once (git SHA tag, OCI labels, SBOM, provenance); write the manifest.

    Without --push the image is only loaded into the local engine: it has no registry digest.
    """
    from pathlib import Path

    from ops.delivery import build as flow
    from ops.delivery import default_deps

    flow.run(stack, service=service, push=push, allow_dirty=allow_dirty, manifest_path=Path(manifest),
             base_image=base_image, dry_run=dry_run, deps=default_deps())


@task(positional=[], help={"stack": _STACK, "md": "write the Markdown summary (PR comment) here",
            "json": "write the raw preview steps here", "dry_run": _DRY})
@_friendly
def preview(c, stack, md=None, json=None, dry_run=False):
    """Pulumi preview with the changes summarised: replaced and deleted resources first."""
    from pathlib import Path

    from ops.delivery import default_deps
    from ops.delivery import preview as flow

    flow.run(stack, md=Path(md) if md else None, json_out=Path(json) if json else None, dry_run=dry_run,
             deps=default_deps())


@task(positional=[], help={"stack": _STACK, "manifest": "the build manifest to deploy",
            "no_rollback": "on failed verification, stop instead of rolling back", "dry_run": _DRY})
@_friendly
def deploy(c, stack, manifest="out/manifest.json", no_rollback=False, dry_run=False):
    """Preflight, lock, migrate, up, verify, record; roll back automatically when verification fails."""
    from pathlib import Path

    from ops.delivery import default_deps
    from ops.delivery import deploy as flow

    flow.deploy(stack, manifest_path=Path(manifest), no_rollback=no_rollback, dry_run=dry_run, deps=default_deps())


@task(positional=[], help={"stack": _STACK, "to": "release id to go back to (default: the last good one before the current)",
            "break_glass": "Pulumi cannot run: point ECS services at their previous task definitions",
            "dry_run": _DRY})
@_friendly
def rollback(c, stack, to=None, break_glass=False, dry_run=False):
    """Redeploy an earlier verified release's digests through the deploy path, with verification."""
    from ops.delivery import default_deps
    from ops.delivery import rollback as flow

    flow.run(stack, to=to, break_glass=break_glass, dry_run=dry_run, deps=default_deps())


@task(positional=[], help={"from_": "source stack (its newest release must be verified)", "to": "target stack",
            "release": "promote this verified release of the source stack (default: its newest)",
            "source_role": "role in the source account to read its ledger and pull its images "
                           "(default: $REFARCH_PROMOTION_SOURCE_ROLE_ARN, else the caller's own account)",
            "dry_run": _DRY})
@_friendly
def promote(c, from_, to, release=None, source_role=None, dry_run=False):
    """Deploy exactly the digests of a verified release of the source stack to the target stack."""
    import os

    from ops.delivery import default_deps
    from ops.delivery import promote as flow

    role = source_role or os.environ.get("REFARCH_PROMOTION_SOURCE_ROLE_ARN") or None
    flow.run(from_, to, release_id=release, source_role=role, dry_run=dry_run, deps=default_deps())


@task(positional=[], help={"stack": _STACK, "limit": "how many releases to show (default 20)"})
@_friendly
def releases(c, stack, limit=None):
    """The stack's release history (ledger in DynamoDB), newest first; interrupted runs flagged."""
    from ops.delivery import default_deps, stack_ops

    stack_ops.releases(stack, limit=_number("limit", limit, 20, minimum=1), deps=default_deps())


@task(positional=[], help={"stack": _STACK})
@_friendly
def flags(c, stack):
    """The stack's feature flags: each declared flag's value as AppConfig serves it now, and recent changes."""
    from ops import flags as flow

    flow.show(stack, deps=flow.default_deps())


# Flags, not positionals (`invoke flags-set NAME on`): a positional would swallow `--help` as a name.
@task(positional=[], help={"stack": _STACK, "name": "a flag declared in refarch:flags", "value": "on or off"})
@_friendly
def flags_set(c, stack, name, value):
    """Switch a flag on or off: an AppConfig deployment with the stack's strategy, watched to its end
    (exit 3 when AppConfig rolls it back) and recorded in the release ledger as kind `flag`."""
    from ops import flags as flow

    flow.set_flag(stack, name, value, deps=flow.default_deps())


@task(positional=[], help={"stack": _STACK, "dry_run": _DRY})
@_friendly
def verify(c, stack, dry_run=False):
    """Verify the live stack: ECS stable, targets healthy, smoke checks, health alarms over the bake window."""
    from ops.delivery import default_deps
    from ops.delivery import deploy as flow

    flow.verify_stack(stack, dry_run=dry_run, deps=default_deps())


@task(positional=[], help={"stack": _STACK, "force": "required for a protected stack", "yes": "skip the typed confirmation",
            "dry_run": _DRY})
@_friendly
def destroy(c, stack, force=False, yes=False, dry_run=False):
    """Destroy a stack: shows what goes first, asks for the stack name, refuses protected stacks unless forced."""
    from ops.delivery import default_deps, stack_ops

    stack_ops.destroy(stack, force=force, yes=yes, dry_run=dry_run, deps=default_deps())


@task(positional=[], help={"stack": _STACK, "dry_run": _DRY})
@_friendly
def drift(c, stack, dry_run=False):
    """Refresh in preview-only mode. Exit code: 0 no drift, 2 drift (listed), 1 error."""
    from ops.delivery import default_deps, stack_ops

    code = stack_ops.drift(stack, dry_run=dry_run, deps=default_deps())
    if code:
        raise Exit(code=code)
# DELIVERY-TASKS-END


# --- guardrails and CI (issue 4: policy/, ops/policy_run.py) ------------------------------------
# CI-TASKS-BEGIN
@task(positional=[], help={"stack": "stack name (stacks/Pulumi.<stack>.yaml)",
            "synth": "check this synth JSON (from `invoke synth --out`) instead of synthesizing the stack"})
@_friendly
def policy(c, stack, synth=None):
    """Run the CrossGuard pack (policy/) offline over the synth output; fail on mandatory violations."""
    from ops.policy_run import command

    command(stack, synth)


@task(positional=[], help={"fix": "apply ruff's safe fixes"})
def lint(c, fix=False):
    """ruff over the whole repository (rules in pyproject.toml)."""
    import sys

    c.run(f"{sys.executable} -m ruff check {'--fix ' if fix else ''}.", pty=False)


@task(positional=[])
def typecheck(c):
    """mypy over the Pulumi program, the ops package, the policy pack and the CI bootstrap."""
    import sys

    # policy/ and ci/bootstrap/ are not packages: mypy checks their modules by path.
    c.run(f"{sys.executable} -m mypy infra ops policy/refarch_policies.py ci/bootstrap/refarch_ci_bootstrap.py",
          pty=False)


@task(positional=[], help={"workers": "pytest-xdist workers (0: run in this process; default 2)",
                           "k": "only tests matching this expression"})
@_friendly
def test(c, workers=None, k=None):
    """The test suite (pytest, `workers` processes); what `.ci/run` runs after installing its services."""
    import shlex
    import sys

    selector = f" -k {shlex.quote(k)}" if k else ""
    c.run(f"{sys.executable} -m pytest -n {_number('workers', workers, 2)}{selector}", pty=False)
# CI-TASKS-END


# --- review (issue 5: ops/review/) --------------------------------------------------------------
# REVIEW-TASKS-BEGIN
@task(positional=[], help={
    "stack": "stack name (stacks/Pulumi.<stack>.yaml): its region and `usage` assumptions",
    "compare": "a base synth JSON: show the monthly delta per resource against it",
    "synth": "price this synth JSON instead of synthesizing the stack now",
    "md": "also write the estimate as Markdown here",
})
@_friendly
def cost(c, stack, compare=None, synth=None, md=None):
    """Monthly cost estimate at on-demand list prices, per layer and per resource, offline."""
    from ops.review.cost import command

    _writable(md)
    command(stack, compare_file=compare, synth_file=synth, md=md)


@task(positional=[], help={
    "stack": "stack name",
    "synth": "draw this synth JSON instead of synthesizing the stack now",
    "out": "write the Mermaid source here (a .md file gets a ```mermaid block)",
})
@_friendly
def diagram(c, stack, synth=None, out=None):
    """Architecture diagram (Mermaid flowchart) generated from the synth output."""
    from ops.review.diagram import command

    _writable(out)
    command(stack, synth_file=synth, out=out)


@task(positional=[], help={
    "stack": "stack name",
    "preview": "change summary from the live Pulumi preview (needs the CLI and credentials; falls back offline)",
    "base": "the base branch's synth JSON: offline change summary and cost delta against it",
    "synth": "report on this synth JSON instead of synthesizing the stack now",
    "md": "write the report here (default: stdout)",
})
@_friendly
def report(c, stack, preview=False, base=None, synth=None, md=None):
    """One Markdown review report: changes, policy, cost and delta, architecture diagram."""
    from ops.review.report import command

    _writable(md)
    command(stack, preview=preview, base=base, md=md, synth_file=synth)


@task(positional=[], help={
    "stacks": "comma-separated stack names (default dev,staging,prod)",
    "out_dir": "where each stack's synth JSON, diagram and report go (default out/review)",
    "base_dir": "a directory of the base branch's synth outputs (<stack>.json): change summary and cost delta",
})
@_friendly
def review(c, stacks="dev,staging,prod", out_dir="out/review", base_dir=None):
    """Synth, policy, cost, diagram and report for several stacks in one process (CI's review)."""
    from ops.review.all_stacks import command

    command(stacks, out_dir, base_dir)
# REVIEW-TASKS-END
