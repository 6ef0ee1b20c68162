"""`invoke preview`: the Pulumi preview of a stack as raw JSON steps and a pull-request comment.

The config is validated first, so a bad stack file never reaches the cloud. `render_markdown`
is pure (stack, steps) -> text, for the review report to reuse.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ops.console import err, out
from ops.delivery import Deps
from ops.errors import OpsError

# When one resource has several steps (a replacement is create-replacement + replace +
# delete-replaced), the one that matters most to a reviewer names it.
SEVERITY = ("replace", "delete", "create", "update", "import", "read", "same")
NORMAL = {"create-replacement": "replace", "delete-replaced": "replace", "discard-replaced": "replace",
          "read-replacement": "read", "import-replacement": "import", "discard": "delete",
          "remove-pending-replace": "delete", "refresh": "same"}
SYMBOL = {"create": "+", "update": "~", "replace": "±", "delete": "-", "read": ">", "import": "=", "same": " "}
LABEL = {"create": "to create", "update": "to update", "replace": "to replace", "delete": "to delete",
         "read": "to read", "import": "to import", "same": "unchanged"}
MAX_LISTED = 30  # keeps the comment under ~60 lines; the JSON has everything


def run(stack: str, *, md: Path | None = None, json_out: Path | None = None, dry_run: bool = False,
        deps: Deps) -> list[dict[str, Any]] | None:
    config = deps.load_config(stack)  # raises ConfigError naming every problem: no cloud call on a bad file
    if dry_run:
        err.print(f"would run: pulumi preview --stack {stack}"
                  + (f", write {json_out}" if json_out else "") + (f", write {md}" if md else ""), markup=False)
        return None
    found = collect(stack, config, deps)
    text = render_markdown(stack, found)
    if json_out:
        _write(json_out, json.dumps(found, indent=2) + "\n")
    if md:
        _write(md, text)
    out.print(text, markup=False, highlight=False)
    return found


def collect(stack: str, config: Any, deps: Deps) -> list[dict[str, Any]]:
    """The live preview's steps: the one path `invoke preview` and `invoke report --preview` share."""
    selected = deps.pulumi().select(stack)
    running = _running_images(stack, config, deps)
    if running:
        selected.set_images(running)
    events: list[Any] = []
    selected.preview(on_event=events.append)
    return steps(events)


def _running_images(stack: str, config: Any, deps: Deps) -> dict[str, str] | None:
    """The digests the stack runs, for built services the stack file does not pin.

    A checkout's stack file rarely holds the deployed digests (deploy writes them in CI's
    workspace), and without them the program falls back to a placeholder image: every preview
    would show every task definition changing. Pinning what runs (the ledger's current release)
    makes the preview show the change under review and nothing else.
    """
    unpinned = [svc.name for svc in config.services if svc.build and svc.name not in config.images]
    if not unpinned:
        return None
    try:
        with deps.translate_errors():
            current = deps.ledger(deps.clients(config.region), stack).current()
    except OpsError as exc:
        err.print(f"note: previewing with the stack file's images; the ledger is unreadable: {exc.message}",
                  markup=False)
        return None
    if current is None:
        return None
    err.print(f"note: {', '.join(unpinned)} pinned to the running release {current.id} for this preview",
              markup=False)
    return {**current.images, **config.images}


def steps(events: list[Any]) -> list[dict[str, Any]]:
    """One step per resource (op, urn, type, name, diffs), in engine order."""
    by_urn: dict[str, dict[str, Any]] = {}
    for event in events:
        pre = getattr(event, "resource_pre_event", None)
        if pre is None:
            continue
        meta = pre.metadata
        if meta.type == "pulumi:pulumi:Stack" or meta.type.startswith("pulumi:providers:"):
            continue
        op = str(getattr(meta.op, "value", meta.op))
        op = NORMAL.get(op, op)
        step = by_urn.setdefault(meta.urn, {"op": op, "urn": meta.urn, "type": meta.type,
                                            "name": meta.urn.rsplit("::", 1)[-1], "diffs": []})
        if _rank(op) < _rank(step["op"]):
            step["op"] = op
        for key in [*(meta.diffs or []), *(meta.keys or [])]:
            if key not in step["diffs"]:
                step["diffs"].append(key)
    return list(by_urn.values())


def render_markdown(stack: str, steps: list[dict[str, Any]]) -> str:
    counts = Counter(step["op"] for step in steps)
    lines = [f"### Pulumi preview: `{stack}`", ""]
    changed = [s for s in steps if s["op"] != "same"]
    if not changed:
        lines.append(f"No changes ({counts.get('same', 0)} resources unchanged).")
        return "\n".join(lines) + "\n"
    summary = [f"{SYMBOL[op]}{counts[op]} {LABEL[op]}" for op in SEVERITY if counts.get(op) and op != "same"]
    summary += [f"{n} {op}" for op, n in sorted(counts.items()) if op not in SEVERITY]
    lines.append("**" + " · ".join(summary) + "**" + (f" · {counts['same']} unchanged" if counts.get("same") else ""))
    lines.append("")
    risky = [s for s in changed if s["op"] in ("replace", "delete")]
    if risky:
        replaced, deleted = counts.get("replace", 0), counts.get("delete", 0)
        lines += ["> [!WARNING]",
                  f"> **{replaced} replaced, {deleted} deleted**: data or addresses of these resources may be lost"]
        lines += [f"> - {_line(s)}" for s in _ordered(risky)[:MAX_LISTED]]
        if len(risky) > MAX_LISTED:
            lines.append(f"> - … and {len(risky) - MAX_LISTED} more (see the JSON)")
        lines.append("")
    rest = [s for s in changed if s["op"] not in ("replace", "delete")]
    if rest:
        room = max(MAX_LISTED - min(len(risky), MAX_LISTED), 10)
        lines += [f"<details><summary>Other changes ({len(rest)})</summary>", ""]
        lines += [f"- {_line(s)}" for s in _ordered(rest)[:room]]
        if len(rest) > room:
            lines.append(f"- … and {len(rest) - room} more (see the JSON)")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _line(step: dict[str, Any]) -> str:
    diffs = step.get("diffs") or []
    shown = ", ".join(f"`{d}`" for d in diffs[:4]) + (f" +{len(diffs) - 4}" if len(diffs) > 4 else "")
    return f"`{SYMBOL.get(step['op'], '?')}` {step['op']} `{step['type']}` **{step['name']}**" + (f" ({shown})" if shown else "")


def _ordered(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(steps, key=lambda s: (_rank(s["op"]), s["type"], s["name"]))


def _rank(op: str) -> int:
    return SEVERITY.index(op) if op in SEVERITY else len(SEVERITY)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    err.print(f"wrote {path}", markup=False)
