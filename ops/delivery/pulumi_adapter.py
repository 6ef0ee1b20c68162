"""The one thin adapter over the Pulumi Automation API; the flows call nothing else of Pulumi.

The stack is the CLI program in the repository root (LocalWorkspace over `Pulumi.yaml`).
`stackConfigDir: stacks/` caveat (pulumi/pulumi#10305): `LocalWorkspace.stack_settings()` and
`save_stack_settings()` read and write `Pulumi.<stack>.yaml` in the work dir and ignore
stackConfigDir, while every CLI-backed config command (`pulumi config set ...`) honours it. So
this adapter never touches stack settings objects: config goes through `set_config`, which
shells out to `pulumi config set --stack S`, and lands in `stacks/Pulumi.<stack>.yaml`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from ops.console import err
from ops.errors import OpsError

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "refarch"
INSTALL_URL = "https://www.pulumi.com/docs/install/"
# The CrossGuard pack guards every live preview and update, as `invoke policy` does offline.
POLICY_PACK = ROOT / "policy"
SECRET = "[secret]"

OnEvent = Callable[[Any], None]


def ensure_cli() -> None:
    if shutil.which("pulumi") is None:
        raise OpsError(f"the Pulumi CLI is not installed: {INSTALL_URL}")


@dataclass
class RefreshOutcome:
    """What a preview-only refresh found: change counts and the resources that drifted."""

    changes: dict[str, int]
    drifted: list[dict[str, Any]] = field(default_factory=list)

    @property
    def has_drift(self) -> bool:
        return bool(self.drifted) or any(n for op, n in self.changes.items() if op != "same")


class PulumiStack:
    """select() first; every other method acts on the selected stack."""

    def __init__(self, work_dir: Path = ROOT):
        self.work_dir = work_dir
        self.name: str | None = None
        self._stack: Any = None

    # --- selection and config -----------------------------------------------------------------
    def select(self, stack: str, create: bool = False) -> PulumiStack:
        """The stack; `create` makes it on first use (a local stack), never for an AWS one."""
        ensure_cli()
        from pulumi import automation as auto

        with _Translate(stack):
            options = None
            if self.work_dir.resolve() != ROOT.resolve():
                # Another tree (a release's commit, rollback.py): its program must import its own
                # `infra`, not this checkout's installed one; PYTHONPATH comes first on sys.path.
                options = auto.LocalWorkspaceOptions(env_vars={"PYTHONPATH": str(self.work_dir)})
            if create:
                self._stack = auto.create_or_select_stack(stack_name=stack, work_dir=str(self.work_dir),
                                                          opts=options)
            else:
                self._stack = auto.select_stack(stack_name=stack, work_dir=str(self.work_dir), opts=options)
        self.name = stack
        return self

    def set_config(self, key: str, value: str, path: bool = False) -> None:
        from pulumi import automation as auto

        with _Translate(self.name):
            self._selected().set_config(key, auto.ConfigValue(value=value, secret=False), path=path)

    def set_images(self, images: dict[str, str]) -> None:
        # One JSON value replaces the whole map in one command: a service dropped from the
        # manifest cannot linger (a --path set per key would leave stale keys behind).
        self.set_config(f"{PROJECT}:images", json.dumps(images, sort_keys=True))

    # --- operations ---------------------------------------------------------------------------
    def preview(self, on_event: OnEvent | None = None) -> Any:
        with _Translate(self.name):
            return self._selected().preview(on_event=on_event, policy_packs=[str(POLICY_PACK)])

    def up(self, target_urns: list[str] | None = None, on_event: OnEvent | None = None) -> Any:
        with _Translate(self.name):
            return self._selected().up(target=target_urns or None, on_event=on_event,
                                       policy_packs=[str(POLICY_PACK)])

    def refresh(self, preview_only: bool = True) -> RefreshOutcome:
        drifted: dict[str, dict[str, Any]] = {}  # by URN: a step may come as pre and outputs events

        def collect(event: Any) -> None:
            step = _drift_step(event)
            if step:
                drifted.setdefault(step["urn"], step)

        with _Translate(self.name):
            stack = self._selected()
            if preview_only:
                result = stack.preview_refresh(on_event=collect)
            else:
                result = stack.refresh(on_event=collect)
        changes = getattr(result, "change_summary", None) or getattr(getattr(result, "summary", None),
                                                                     "resource_changes", None) or {}
        return RefreshOutcome({str(getattr(k, "value", k)): int(v) for k, v in changes.items()},
                              list(drifted.values()))

    def destroy(self, on_event: OnEvent | None = None) -> Any:
        with _Translate(self.name):
            return self._selected().destroy(on_event=on_event)

    def outputs(self) -> dict[str, Any]:
        """Stack outputs as plain values; secret outputs are masked, never printed or logged."""
        with _Translate(self.name):
            raw = self._selected().outputs()
        return {key: (SECRET if out.secret else out.value) for key, out in raw.items()}

    def resources(self) -> list[dict[str, Any]]:
        """The resources in the stack's state (no stack or provider pseudo-resources)."""
        with _Translate(self.name):
            deployment = self._selected().export_stack().deployment or {}
        found = []
        for res in deployment.get("resources") or []:
            kind = res.get("type", "")
            if kind == "pulumi:pulumi:Stack" or kind.startswith("pulumi:providers:"):
                continue
            found.append({"urn": res.get("urn"), "type": kind, "id": res.get("id"),
                          "protect": bool(res.get("protect"))})
        return found

    def _selected(self) -> Any:
        if self._stack is None:
            raise RuntimeError("PulumiStack.select(stack) must be called first")
        return self._stack


class _Translate:
    """Pulumi CLI failures as one OpsError line (plus the stderr tail), never a traceback."""

    def __init__(self, stack: str | None):
        self.stack = stack

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            return
        from pulumi.automation import errors

        if isinstance(exc, FileNotFoundError) and "pulumi" in str(exc):
            raise OpsError(f"the Pulumi CLI is not installed: {INSTALL_URL}") from None
        if isinstance(exc, errors.StackNotFoundError):
            raise OpsError(f"stack {self.stack} does not exist in the current Pulumi backend: "
                           f"run `pulumi stack init {self.stack}` (after `pulumi login`)") from None
        if isinstance(exc, errors.ConcurrentUpdateError):
            raise OpsError(f"stack {self.stack} has an update in progress in the Pulumi backend "
                           f"(if it crashed: `pulumi cancel --stack {self.stack}`)") from None
        if isinstance(exc, errors.CommandError):
            raise OpsError(f"pulumi failed on stack {self.stack}: {stderr_tail(str(exc))}") from None


def stderr_tail(text: str, lines: int = 8) -> str:
    """The useful end of a CommandError text (`code: / stdout: / stderr:` sections)."""
    _, _, stderr = text.partition(" stderr:")
    tail = [ln.strip() for ln in (stderr or text).strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(tail) or "no error output"


def _drift_step(event: Any) -> dict[str, Any] | None:
    outputs = getattr(event, "res_outputs_event", None) or getattr(event, "resource_pre_event", None)
    meta = getattr(outputs, "metadata", None)
    if meta is None:
        return None
    op = str(getattr(meta.op, "value", meta.op))
    if meta.type.startswith("pulumi:"):
        return None
    if op in ("update", "delete", "replace") or (op == "refresh" and meta.diffs):
        return {"op": op, "urn": meta.urn, "type": meta.type, "diffs": list(meta.diffs or [])}
    return None


# --- progress during up / destroy -------------------------------------------------------------

COUNTED = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted",
           "create-replacement": "replaced", "delete-replaced": "replaced"}


class UpProgress:
    """An on_event handler: resource operations started/done by kind, with elapsed time.

    On a terminal it redraws one status line; elsewhere (CI logs) it prints a line per finished
    step. `up --skip-preview` does not announce a total, so the total is the steps started so far
    unless the caller knows it (from a preview).
    """

    def __init__(self, label: str, console: Console = err, total: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.label = label
        self.console = console
        self.total = total
        self.clock = clock
        self.started_at = clock()
        self.started: set[str] = set()
        self.done: set[str] = set()
        self.counts = {name: 0 for name in ("created", "updated", "replaced", "deleted")}
        self.failed: list[str] = []
        self._status: Any = None

    def __call__(self, event: Any) -> None:
        pre, outs = getattr(event, "resource_pre_event", None), getattr(event, "res_outputs_event", None)
        failed = getattr(event, "res_op_failed_event", None)
        if pre is not None:
            meta = pre.metadata
            if self._counted(meta):
                self.started.add(meta.urn)
        elif outs is not None:
            meta = outs.metadata
            if self._counted(meta) and meta.urn not in self.done:
                self.done.add(meta.urn)
                self.started.add(meta.urn)
                verb = COUNTED[_op(meta)]
                self.counts[verb] += 1
                self._line(f"{verb:<8} {meta.type} {meta.urn.rsplit('::', 1)[-1]}")
        elif failed is not None:
            self.failed.append(failed.metadata.urn)
            self._line(f"FAILED   {failed.metadata.type} {failed.metadata.urn.rsplit('::', 1)[-1]}")
        diag = getattr(event, "diagnostic_event", None)
        if diag is not None and diag.severity == "error":
            self.console.print(f"[red]{diag.message.strip()}[/red]", markup=True, highlight=False)

    def summary(self) -> str:
        total = self.total if self.total is not None else len(self.started)
        counts = ", ".join(f"{name} {n}" for name, n in self.counts.items())
        return f"[{self.elapsed()}] {self.label}: {len(self.done)}/{total} done ({counts})"

    def elapsed(self) -> str:
        seconds = int(self.clock() - self.started_at)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        self.console.print(self.summary(), markup=False, highlight=False)

    @staticmethod
    def _counted(meta: Any) -> bool:
        return _op(meta) in COUNTED and not meta.type.startswith("pulumi:pulumi:")

    def _line(self, what: str) -> None:
        if self.console.is_terminal:
            if self._status is None:
                self._status = self.console.status(self.summary())
                self._status.start()
            self._status.update(self.summary())
        else:
            total = self.total if self.total is not None else len(self.started)
            self.console.print(f"[{self.elapsed()}] {len(self.done)}/{total} {what}", markup=False,
                               highlight=False)


def _op(meta: Any) -> str:
    return str(getattr(meta.op, "value", meta.op))


def full_up(stack: Any, name: str) -> Any:
    """A whole `up` of the selected stack, its progress on the console."""
    progress = UpProgress(f"up {name}")
    try:
        return stack.up(on_event=progress)
    finally:
        progress.close()
