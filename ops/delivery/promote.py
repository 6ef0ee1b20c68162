"""`invoke promote --from staging --to prod`: exactly the digests staging verified, nothing rebuilt.

The source is the newest release of `--from`; it must have succeeded AND passed verification
(anything else is refused, naming why). Each image is copied by digest into the target stack's
repositories (`docker buildx imagetools create` keeps the manifest, so the digest), then the
target is deployed through the deploy path, whose preflight re-checks every digest in ECR.
"""

from __future__ import annotations

from typing import Any

from ops.console import err
from ops.delivery import Deps, build, deploy, manifest
from ops.delivery.aws import AssumedClients
from ops.delivery.first_deploy import ensure_repositories
from ops.errors import OpsError


def run(from_: str, to: str, *, release_id: str | None = None, source_role: str | None = None,
        dry_run: bool = False, deps: Deps) -> Any:
    """`source_role`: a role in the source environment's account (one account per environment):
    its ledger is read and its images pulled with it; the target is written with the caller's own."""
    if from_ == to:
        raise OpsError(f"--from and --to are both {to}: promotion moves a release between stacks")
    source_config = deps.load_config(from_)
    target_config = deps.load_config(to)
    with deps.translate_errors():
        target_clients = deps.clients(target_config.region)
        source_clients = (AssumedClients(source_config.region, source_role, via=target_clients) if source_role
                          else deps.clients(source_config.region))
        release = promotable(deps.ledger(source_clients, from_), from_, release_id)
        # The protected environment's approval log shows this line: which release is going out.
        err.print(f"promoting {from_} release {release.id} (git {release.git_sha[:12]}) to {to}", markup=False)
        names = [s.name for s in target_config.services if s.build]
        absent = [n for n in names if n not in release.images]
        if absent:
            raise OpsError(f"release {release.id} of {from_} has no image for {', '.join(absent)} "
                           f"(built by {to}'s config): deploy them to {from_} first")
        repos = build.repositories(to, target_config, names, deps, target_clients)
        images = {n: f"{repos[n]}@{manifest.digest_of(release.images[n])}" for n in names}
        to_copy = {n: ref for n, ref in images.items() if deps.missing_digests(target_clients, {n: ref})}
        if to_copy:
            # The target's repositories exist before anything is copied into them (a new stack).
            ensure_repositories(to, target_config, {n: repos[n] for n in to_copy}, deps, target_clients,
                                dry_run=dry_run)
            docker = deps.docker(dry_run=dry_run)
            if not dry_run:
                docker.ensure_cli()
            # imagetools pulls from the source registry and pushes to the target one: log in to both.
            source_registry = release.images[next(iter(to_copy))].split("/")[0]
            target_registry = repos[next(iter(to_copy))].split("/")[0]
            build.login(docker, source_clients, dry_run=dry_run, registry=source_registry)
            if target_registry != source_registry:
                build.login(docker, target_clients, dry_run=dry_run, registry=target_registry)
            for name in to_copy:
                # A tag is required by imagetools; the release id keeps it unique under immutable tags.
                docker.copy(release.images[name], f"{repos[name]}:{from_}-{release.id}")
        for name in set(images) - set(to_copy):
            err.print(f"{name}: {images[name]} is already in {to}'s repository", markup=False)
    return deploy.run(deploy.Request(
        stack=to, images=images, kind="promote", source=f"{from_} release {release.id}",
        notes=[f"promoted from {from_} release {release.id} (git {release.git_sha[:12]})"],
    ), deps, dry_run=dry_run)


def promotable(ledger: Any, stack: str, release_id: str | None = None) -> Any:
    """The named release (default: the newest verified one) of `stack`, if it may be promoted."""
    if release_id:
        release = ledger.get(release_id)
        if not release.good:
            why = release.outcome if release.outcome != "succeeded" else "succeeded but was never verified"
            raise OpsError(f"release {release.id} of {stack} ({release.kind}) is {why}: only a verified "
                           f"release is promoted")
        return release
    newest = ledger.history(limit=1)
    if not newest:
        raise OpsError(f"{stack} has no releases: nothing to promote")
    release = newest[0]
    if release.outcome == "deploying":
        raise OpsError(f"the newest release of {stack}, {release.id}, is still deploying (or was interrupted): "
                       f"wait for it, or check `invoke releases --stack {stack}`")
    if release.outcome != "succeeded" or not release.verified:
        why = release.outcome if release.outcome != "succeeded" else "succeeded but was never verified"
        raise OpsError(f"the newest release of {stack}, {release.id} ({release.kind}), is {why}: only a verified "
                       f"release is promoted; fix {stack} first, or name a verified one with --release")
    return release
