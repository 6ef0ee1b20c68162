"""`invoke up` / `invoke down` for a local stack: secrets first, then Pulumi through the one adapter.

A local stack is a Pulumi stack like any other (state in the user's backend, for example
`pulumi login --local`), whose program renders the Docker target; nothing here talks to AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ops.console import err, out
from ops.errors import OpsError

ROOT = Path(__file__).resolve().parents[1]
# The images `invoke up` just built, by service: the program reads them (infra/local/program.py), so a
# rebuild replaces the container without writing machine-specific ids into the stack file.
IMAGES_ENV = "REFARCH_LOCAL_IMAGES"
LOCAL_TAG = "local"


def host_architecture() -> str:
    import platform

    return "ARM64" if platform.machine().lower() in ("arm64", "aarch64") else "X86_64"


def build_images(stack: str, config: Any, docker: Any, engine: Any, git: Any,
                 base_image: str | None = None) -> dict[str, str]:
    """Each `build` service built for this machine's architecture, loaded into the engine (no push):
    service -> the engine's image id."""
    from ops.delivery import commit_created

    epoch = git.commit_time()
    images = {}
    for svc in config.services:
        if not svc.build:
            continue
        repository = f"refarch-{stack}/{svc.name}"
        docker.buildx_build(context=svc.build, repository=repository, git_sha=git.sha(),
                            architecture=host_architecture(), source_url=None,
                            created=commit_created(epoch),
                            push=False, tag=LOCAL_TAG, base_image=base_image, source_date_epoch=epoch)
        images[svc.name] = engine.images.get(f"{repository}:{LOCAL_TAG}").id
        err.print(f"{svc.name}: built {repository}:{LOCAL_TAG} ({images[svc.name][:19]})")
    return images


class Adapter(Protocol):
    def select(self, stack: str, create: bool = False) -> Any: ...
    def up(self, target_urns: list[str] | None = None, on_event: Any = None) -> Any: ...
    def destroy(self, on_event: Any = None) -> Any: ...
    def outputs(self) -> dict[str, Any]: ...
    def set_config(self, key: str, value: str, path: bool = False) -> None: ...


def _local_config(stack: str):
    from ops import stackfile

    config = stackfile.load(stack)
    if config.target != "local":
        raise OpsError(f"stack {stack!r} targets {config.target}: `invoke up` and `invoke down` are for a local "
                       f"stack (refarch:target: local); use `invoke deploy --stack {stack}`")
    return config


def _engine_reachable(ping: Callable[[], None] | None = None) -> None:
    try:
        if ping is not None:
            ping()
            return
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception as exc:  # the SDK raises several types; all mean the same to the user
        raise OpsError(f"no Docker engine answers on this machine's socket ({exc.__class__.__name__}): "
                       f"start one (see docs/local.md)") from None


def up(stack: str, adapter: Adapter, *, ping: Callable[[], None] | None = None,
       build: Callable[[Any], dict[str, str]] | None = None,
       cli: Callable[[], None] | None = None) -> dict[str, Any]:
    """`build` (config -> images) defaults to building with the engine, `cli` to checking the Pulumi
    CLI is installed; tests pass their own. Every check runs before anything is built or written."""
    import json
    import os

    from infra.local import secrets

    config = _local_config(stack)
    from ops.delivery.pulumi_adapter import ensure_cli

    (cli or ensure_cli)()
    _engine_reachable(ping)
    images = (build or (lambda cfg: _default_build(stack, cfg)))(config)
    os.environ[IMAGES_ENV] = json.dumps(images, sort_keys=True)
    directory = ROOT / config.local_target.secrets_dir
    written = secrets.ensure(directory, secrets.CACHE_USER, sorted({k for s in config.services for k in s.secrets}))
    for name in written:
        err.print(f"wrote {directory.relative_to(ROOT) / name} (in a 0700 directory; never in the Pulumi state)")
    from infra.local import flags

    if flags.ensure(flags.host_file(ROOT, stack), config.flags):
        err.print(f"wrote {flags.host_file(ROOT, stack).relative_to(ROOT)} (the local flags; edit a value to flip it)")
    adapter.select(stack, create=True)
    adapter.up()
    outputs = adapter.outputs()
    out.print(f"gateway: {outputs.get('gateway_url')}")
    if outputs.get("telemetry_ui_url"):
        out.print(f"telemetry: {outputs['telemetry_ui_url']}")
    return outputs


def build_local(stack: str, config: Any, base_image: str | None = None) -> dict[str, str]:
    """`invoke build --stack local` and `invoke up`: every service built into this machine's engine."""
    import docker as docker_sdk  # type: ignore[import-untyped]

    from ops.delivery.docker_adapter import Docker
    from ops.delivery.git import Git

    _engine_reachable(None)
    return build_images(stack, config, Docker(), docker_sdk.from_env(), Git(ROOT), base_image=base_image)


def _default_build(stack: str, config: Any) -> dict[str, str]:
    return build_local(stack, config)


def down(stack: str, adapter: Adapter) -> None:
    config = _local_config(stack)
    adapter.select(stack)
    adapter.destroy()
    out.print(f"{stack}: every container, network and volume removed (secrets kept in "
              f"{config.local_target.secrets_dir})")


def pin(stack: str, adapter: Adapter, registry: Callable[[str], str]) -> dict[str, str]:
    """`invoke local-pin`: each platform image of the local stack resolved to its digest in its
    registry and written back to the stack file (`refarch:local.images.<name>`), for a user who can
    reach the registries. `registry(ref)` returns the digest (`sha256:...`) the registry holds."""
    config = _local_config(stack)
    local_cfg = config.local_target
    pinned: dict[str, str] = {}
    adapter.select(stack)
    for name in local_cfg.images.model_dump():
        ref = local_cfg.image(name, major=config.database.major_version, version=config.cache.engine_version)
        bare = ref.split("@", 1)[0]
        try:
            digest = registry(bare)
        except Exception as exc:  # the SDK's errors differ by registry; all mean "not resolvable"
            raise OpsError(f"local.images.{name}: cannot resolve {bare} ({exc.__class__.__name__}: {exc}); "
                           f"nothing was written") from None
        pinned[name] = f"{bare}@{digest}"
    for name, ref in pinned.items():
        adapter.set_config(f"refarch:local.images.{name}", ref, path=True)
        out.print(f"local.images.{name}: {ref}")
    return pinned


def registry_digest(ref: str) -> str:
    import docker as docker_sdk  # type: ignore[import-untyped]

    return str(docker_sdk.from_env().images.get_registry_data(ref).id)
