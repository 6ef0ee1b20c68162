"""Offline change summary: what a head synth output creates, deletes and updates relative to a base.

Used when no live preview is possible (forks, no credentials). It compares registered inputs and
resource options by URN; it cannot know what the provider would replace or what has drifted, and
it names changed keys only, never values (a value may be a secret the redaction did not catch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ops.review import SynthJson, is_component

# Resource options worth a reviewer's attention when they change.
OPTIONS = ("protect", "retainOnDelete", "ignoreChanges", "dependsOn")


@dataclass(frozen=True)
class Change:
    urn: str
    type: str
    name: str
    keys: tuple[str, ...] = ()  # changed input keys (top level) and `options.<name>`


@dataclass
class ChangeSummary:
    created: list[Change] = field(default_factory=list)
    deleted: list[Change] = field(default_factory=list)
    updated: list[Change] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.created or self.deleted or self.updated)

    def counts(self) -> str:
        return f"+{len(self.created)} ~{len(self.updated)} -{len(self.deleted)}"


def summarize(base: SynthJson, head: SynthJson) -> ChangeSummary:
    before = {r["urn"]: r for r in base["resources"] if not is_component(r)}
    after = {r["urn"]: r for r in head["resources"] if not is_component(r)}
    summary = ChangeSummary()
    for urn in sorted(after.keys() - before.keys()):
        summary.created.append(_change(after[urn]))
    for urn in sorted(before.keys() - after.keys()):
        summary.deleted.append(_change(before[urn]))
    for urn in sorted(after.keys() & before.keys()):
        keys = changed_keys(before[urn], after[urn])
        if keys:
            summary.updated.append(_change(after[urn], keys))
        else:
            summary.unchanged += 1
    return summary


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, ...]:
    old, new = before.get("inputs") or {}, after.get("inputs") or {}
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    old_opts, new_opts = before.get("options") or {}, after.get("options") or {}
    keys += [f"options.{k}" for k in OPTIONS if old_opts.get(k) != new_opts.get(k)]
    return tuple(keys)


def _change(resource: dict[str, Any], keys: tuple[str, ...] = ()) -> Change:
    return Change(urn=resource["urn"], type=resource["type"], name=resource["name"], keys=keys)


def render_markdown(summary: ChangeSummary, *, limit: int = 40) -> str:
    """Deletions first (they lose data), then updates with their keys, then creations."""
    if summary.empty:
        return f"No changes ({summary.unchanged} resources unchanged)."
    lines = [f"**{len(summary.created)} to create, {len(summary.updated)} to update, "
             f"{len(summary.deleted)} to delete** ({summary.unchanged} unchanged; offline comparison of synth "
             f"outputs: replacements are not known until a live preview)."]
    if summary.deleted:
        lines += ["", "> [!WARNING]", f"> {len(summary.deleted)} resource(s) would be deleted:"]
        lines += [f"> - `{c.type}` `{c.name}`" for c in summary.deleted[:limit]]
        if len(summary.deleted) > limit:
            lines.append(f"> - … and {len(summary.deleted) - limit} more")
    rows = [("update", c) for c in summary.updated] + [("create", c) for c in summary.created]
    if rows:
        lines += ["", "<details><summary>Updates and creations</summary>", "",
                  "| change | type | name | changed keys |", "| --- | --- | --- | --- |"]
        lines += [f"| {op} | `{c.type}` | `{c.name}` | {', '.join(f'`{k}`' for k in c.keys)} |" for op, c in rows[:limit]]
        if len(rows) > limit:
            lines.append(f"| … | {len(rows) - limit} more | | |")
        lines += ["", "</details>"]
    return "\n".join(lines)
