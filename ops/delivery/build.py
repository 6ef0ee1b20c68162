"""`invoke build`: one image per `build` service, tagged with the commit, pushed to ECR by digest.

Images are built once; deploy and promote only ever move digests. Under --dry-run every docker
command and AWS call is printed, none runs.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.config import StackConfig
from ops import console
from ops.delivery import Deps, commit_created, manifest, utc_now
from ops.errors import OpsError


def run(stack: str, *, service: str | None = None, push: bool = False, allow_dirty: bool = False,
        manifest_path: Path = manifest.DEFAULT_PATH, dry_run: bool = False, base_image: str | None = None,
        deps: Deps) -> manifest.Manifest | None:
    config = deps.load_config(stack)
    if config.target == "local":
        # The local target runs what the engine holds: build into it (no registry, no push).
        if push:
            raise OpsError(f"stack {stack!r} targets the local engine: there is no registry to push to "
                           f"(run `invoke up --stack {stack}`, which builds too)")
        from ops import local

        for name, image_id in local.build_local(stack, config, base_image=base_image).items():
            console.out.print(f"{name}: {image_id} (in the local engine; no registry digest)", markup=False)
        return None
    targets = _targets(config, service)
    if not targets:
        console.err.print(f"{stack}: no service to build", markup=False)
        return None
    docker = deps.docker(dry_run=dry_run)
    if not dry_run:
        docker.ensure_cli()
    dirty = deps.git.dirty_paths()
    if dirty and not allow_dirty:
        raise OpsError(f"the working tree has uncommitted changes ({_few(dirty)}): commit them, or pass "
                       f"--allow-dirty (the image is then tagged `<sha>-dirty-<time>`, never the bare sha)")
    sha = deps.git.sha()
    # A dirty build must never take the commit's own tag: that tag promises the commit's content.
    tag = f"{sha}-dirty-{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}" if dirty else sha
    for svc in targets:
        if not (deps.git.root / svc.build / "Dockerfile").is_file():
            raise OpsError(f"services[{svc.name}].build: no Dockerfile in {svc.build}")
    with deps.translate_errors():
        clients = deps.clients(config.region)
        repos = repositories(stack, config, [s.name for s in targets], deps, clients)
        if push:
            # A brand-new stack has no repositories yet: create exactly those first (first_deploy.py).
            from ops.delivery.first_deploy import ensure_repositories

            ensure_repositories(stack, config, repos, deps, clients, dry_run=dry_run)
        # The registry cache is read and written even without --push: log in either way.
        login(docker, clients, dry_run=dry_run, registry=next(iter(repos.values())).split("/")[0])
        source = deps.git.remote_url()
        # The commit's time, not the build's: two builds of one commit carry identical metadata.
        epoch = deps.git.commit_time()
        created = commit_created(epoch)
        images: dict[str, str] = {}
        for svc in targets:
            digest = docker.buildx_build(context=svc.build, repository=repos[svc.name], git_sha=sha,
                                         architecture=svc.architecture, source_url=source, created=created,
                                         push=push, tag=tag, base_image=base_image, source_date_epoch=epoch)
            if digest:
                images[svc.name] = f"{repos[svc.name]}@{digest}"
                console.out.print(f"{svc.name}: {images[svc.name]}", markup=False, highlight=False)
            elif not dry_run:
                console.out.print(f"{svc.name}: built the local image {repos[svc.name]}:{tag}; not pushed, so "
                                  f"no registry digest (build with --push to get one)", markup=False,
                                  highlight=False)
    if dry_run:
        console.err.print(f"would write: {manifest_path} (git_sha {sha})", markup=False)
        return None
    result = _merge(manifest_path, manifest.Manifest(sha, utc_now(), images))
    manifest.write(manifest_path, result)
    console.err.print(f"wrote {manifest_path}" + ("" if push else
                      " (not pushed: deploy refuses digests that are not in ECR; build with --push)"),
                      markup=False)
    return result


def _targets(config: StackConfig, service: str | None) -> list[Any]:
    built = [s for s in config.services if s.build]
    for svc in config.services:
        if svc.image and (service is None or service == svc.name):
            console.err.print(f"{svc.name}: runs the image {svc.image} as is; nothing to build", markup=False)
    if service is None:
        return built
    named = [s for s in built if s.name == service]
    if not named and not any(s.name == service for s in config.services):
        known = ", ".join(s.name for s in built) or "none"
        raise OpsError(f"no service named {service!r} in stacks/Pulumi.{config.environment}.yaml "
                       f"(services with a build: {known})")
    return named


def repositories(stack: str, config: StackConfig, names: list[str], deps: Deps, clients: Any) -> dict[str, str]:
    """ECR repository URL per service: the stack's outputs when it exists, else the name it will get."""
    deployed: dict[str, Any] = {}
    try:
        deployed = deps.pulumi().select(stack).outputs().get("services") or {}
    except OpsError as exc:
        # No CLI, no backend login or no stack yet: the repository name is deterministic anyway.
        console.err.print(f"stack outputs unavailable ({exc.message}); using the services layer's "
                          f"repository names", markup=False)
    found = {name: (deployed.get(name) or {}).get("repository_url") for name in names}
    if all(found.values()):
        return found  # type: ignore[return-value]
    account = clients.sts.get_caller_identity()["Account"]
    base = f"{account}.dkr.ecr.{config.region}.amazonaws.com/refarch-{stack}"
    return {name: url or f"{base}/{name}" for name, url in found.items()}


def login(docker: Any, clients: Any, dry_run: bool = False, registry: str = "<registry>") -> str:
    """`docker login` to the account's ECR registry with a 12-hour token; returns the registry."""
    if dry_run:
        console.err.print("would call: ecr.get_authorization_token()", markup=False)
        docker.login(registry, "AWS", "")
        return registry
    data = clients.ecr.get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    registry = data["proxyEndpoint"].removeprefix("https://")
    docker.login(registry, username, password)
    return registry


def _merge(path: Path, new: manifest.Manifest) -> manifest.Manifest:
    # `--service x` rebuilds one image: keep the others when they come from the same commit.
    if path.is_file():
        try:
            old = manifest.read(path)
        except OpsError:
            return new
        if old.git_sha == new.git_sha:
            return manifest.Manifest(new.git_sha, new.created_at, {**old.images, **new.images})
    return new


def _few(paths: list[str], n: int = 5) -> str:
    return ", ".join(paths[:n]) + (f" and {len(paths) - n} more" if len(paths) > n else "")
