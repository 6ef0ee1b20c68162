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
# The cache user's name lives in the local cache layer; read here without importing pulumi_docker.
CACHE_USER = "app"


class Adapter(Protocol):
    def select(self, stack: str, create: bool = False) -> Any: ...
    def up(self, target_urns: list[str] | None = None, on_event: Any = None) -> Any: ...
    def destroy(self, on_event: Any = None) -> Any: ...
    def outputs(self) -> dict[str, Any]: ...


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


def up(stack: str, adapter: Adapter, *, ping: Callable[[], None] | None = None) -> dict[str, Any]:
    from infra.local import secrets

    config = _local_config(stack)
    _engine_reachable(ping)
    directory = ROOT / config.local_target.secrets_dir
    written = secrets.ensure(directory, CACHE_USER, sorted({k for s in config.services for k in s.secrets}))
    for name in written:
        err.print(f"wrote {directory.relative_to(ROOT) / name} (in a 0700 directory; never in the Pulumi state)")
    adapter.select(stack, create=True)
    adapter.up()
    outputs = adapter.outputs()
    out.print(f"gateway: {outputs.get('gateway_url')}")
    if outputs.get("telemetry_ui_url"):
        out.print(f"telemetry: {outputs['telemetry_ui_url']}")
    return outputs


def down(stack: str, adapter: Adapter) -> None:
    _local_config(stack)
    adapter.select(stack)
    adapter.destroy()
    out.print(f"{stack}: every container, network and volume removed (secrets kept in "
              f"{_local_config(stack).local_target.secrets_dir})")
