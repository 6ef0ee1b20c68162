"""The delivery pipeline: build -> preview -> deploy (migrate, up, verify) -> rollback / promote.

Decisions live in plain modules (`deploy`, `rollback`, `promote`, ...); every side effect goes
through a seam collected in `Deps`, so tests swap the Pulumi and Docker adapters for recording
fakes and point the AWS half (`aws`, `ledger`, `lock`, `verify`, `images`, `breakglass`) at a
moto server. Importing this package stays cheap: boto3 and pulumi load only when a task runs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def commit_created(epoch: int) -> str:
    """An image's `created` label: its commit's time, so two builds of one commit carry the same."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Deps:
    """Every seam a delivery flow touches; `default_deps()` wires the real ones."""

    pulumi: Callable[[], Any]  # -> an unselected ops.delivery.pulumi_adapter.PulumiStack
    docker: Callable[..., Any]  # (dry_run=) -> ops.delivery.docker_adapter.Docker
    git: Any  # ops.delivery.git.Git
    clients: Callable[[str], Any]  # region -> ops.delivery.aws.Clients
    ledger: Callable[[Any, str], Any]  # (clients, stack) -> ops.delivery.ledger.Ledger
    lock: Callable[..., Any]  # (clients, stack, owner) -> ops.delivery.lock.StackLock
    verify: Callable[..., Any]  # ops.delivery.verify.verify
    missing_digests: Callable[[Any, dict[str, str]], list[str]]
    rollback_services: Callable[..., list[str]]  # break-glass: (clients, cluster, services, task_definitions=)
    caller: Callable[[Any], str]  # clients -> who is acting (STS ARN, else $USER)
    translate_errors: Callable[..., Any]  # context manager: botocore failures -> one-line OpsError
    load_config: Callable[[str], Any]  # stack -> StackConfig (raises ConfigError)
    # Extra keyword arguments for verify(): tests pass a TargetHealth seam, a fake sleep, poll 0.
    verify_options: dict[str, Any] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep
    prompt: Callable[[str], str] = input
    is_tty: Callable[[], bool] = lambda: sys.stdin.isatty()


def default_deps() -> Deps:
    from ops import stackfile
    from ops.delivery import aws, breakglass, images, ledger, lock, verify
    from ops.delivery.docker_adapter import Docker
    from ops.delivery.git import Git
    from ops.delivery.pulumi_adapter import PulumiStack

    return Deps(
        pulumi=PulumiStack,
        docker=Docker,
        git=Git(),
        clients=aws.clients,
        ledger=ledger.Ledger,
        lock=lock.StackLock,
        verify=verify.verify,
        missing_digests=images.missing_digests,
        rollback_services=breakglass.rollback_services,
        caller=aws.caller,
        translate_errors=aws.translate_errors,
        load_config=stackfile.load,
    )
