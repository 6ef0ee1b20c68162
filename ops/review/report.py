"""One Markdown review report per stack (`invoke report`), posted as a single, updated PR comment.

Headline numbers first (changes, policy, monthly cost and its delta), then the mandatory policy
failures, then everything else in collapsed `<details>` sections. The first line is a hidden
marker so the pull-request workflow can find and update its own comment for this stack.

Two integrations live in other engineers' modules and are imported lazily: the live Pulumi
preview (`ops.delivery.preview`) and the offline policy run (`ops.policy_run.evaluate`). When a
module is missing from the checkout, the report says so instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ops.errors import OpsError
from ops.review import SynthJson
from ops.review import changes as changes_mod
from ops.review import cost as cost_mod
from ops.review import diagram as diagram_mod

MAX_ADVISORY = 30


def marker(stack: str) -> str:
    return f"<!-- refarch-report:{stack} -->"


@dataclass(frozen=True)
class PolicyFinding:
    """The fields of `ops.policy_run.Violation` the report shows."""

    policy: str
    level: str  # "mandatory" | "advisory"
    name: str | None
    resource_type: str | None
    message: str


@dataclass
class Changes:
    """The change summary: a live preview's Markdown, or the offline comparison."""

    headline: str
    body: str
    source: str  # "live preview" | "synth comparison" | "none"


def render(stack: str, head: SynthJson, *, usage: cost_mod.Usage, region: str,
           changes: Changes, findings: list[PolicyFinding] | None, base: SynthJson | None = None,
           notes: list[str] | None = None) -> str:
    """The report text. Pure: every input computed by the caller; `findings` None = policy not run."""
    try:
        estimate: cost_mod.Estimate | None = cost_mod.estimate(head, usage, region)
    except OpsError as exc:  # no price table for the region: say so, report everything else
        estimate, cost_problem = None, exc.message
    delta = (cost_mod.compare(cost_mod.estimate(base, usage, region), estimate)
             if base is not None and estimate is not None else None)
    ordered = ordered_findings(findings or [])
    mandatory = [f for f in ordered if f.level == "mandatory"]
    advisory = [f for f in ordered if f.level != "mandatory"]

    if findings is None:
        policy = "not run"
    elif mandatory:
        policy = f"❌ {len(mandatory)} mandatory, {len(advisory)} advisory"
    else:
        policy = f"✅ no mandatory violations, {len(advisory)} advisory"
    if estimate is None:
        cost_line = f"not priced: {cost_problem}"
    else:
        cost_line = f"{cost_mod.money(estimate.total)}/month at list price ({region})"
        if delta is not None:
            cost_line += f", {cost_mod.signed(delta.total)} vs base"
        unpriced = estimate.not_priced()
        if unpriced:
            cost_line += f"; {len(unpriced)} resource(s) not priced"

    lines = [marker(stack), f"## Infrastructure review: `{stack}`", "",
             "| | |", "| --- | --- |",
             f"| changes | {changes.headline} |",
             f"| policy | {policy} |",
             f"| monthly cost | {cost_mod.md_escape(cost_line)} |", ""]
    lines += [f"> {note}" for note in notes or []]
    if notes:
        lines.append("")

    if mandatory:
        lines += ["### Mandatory policy violations", ""]
        lines += [f"- {_finding(f)}" for f in mandatory]
        lines.append("")
    if advisory:
        lines += [f"<details><summary>Advisory policy findings ({len(advisory)})</summary>", ""]
        lines += [f"- {_finding(f)}" for f in advisory[:MAX_ADVISORY]]
        if len(advisory) > MAX_ADVISORY:
            lines.append(f"- … and {len(advisory) - MAX_ADVISORY} more (`invoke policy --stack {stack}`)")
        lines += ["", "</details>", ""]

    lines += [f"<details><summary>Changes ({changes.source})</summary>", "", changes.body.strip(), "", "</details>", ""]
    if estimate is None:
        lines += ["### Monthly cost", "", f"Cost section not priced: {cost_problem}", ""]
    else:
        lines += [cost_mod.render_markdown(estimate, delta, heading="###"), ""]
    lines += ["<details><summary>Architecture (generated from the synth output)</summary>", "",
              "```mermaid", diagram_mod.mermaid(head).rstrip(), "```", "", "</details>"]
    return "\n".join(lines) + "\n"


def ordered_findings(findings: list[PolicyFinding]) -> list[PolicyFinding]:
    """Mandatory first (they block the merge), then by policy and resource."""
    return sorted(findings, key=lambda f: (f.level != "mandatory", f.policy, f.name or "", f.message))


def offline_changes(head: SynthJson, base: SynthJson | None) -> Changes:
    if base is None:
        return Changes("not compared (no `--base` synth output)",
                       "No base synth output was given: run `invoke synth --stack S --out base.json` on the base "
                       "branch and pass `--base base.json`.", "none")
    summary = changes_mod.summarize(base, head)
    return Changes(f"{summary.counts()} (synth comparison)", changes_mod.render_markdown(summary), "synth comparison")


def live_changes(stack: str, pulumi: Callable[[], Any] | None = None) -> Changes:
    """The live preview through the delivery pipeline's own preview path and Markdown renderer."""
    from ops.delivery import default_deps, preview

    deps = default_deps()
    if pulumi is not None:
        deps.pulumi = pulumi
    steps = preview.collect(stack, deps.load_config(stack), deps)
    changed = [s for s in steps if s["op"] != "same"]
    counts = {op: sum(1 for s in changed if s["op"] == op) for op in ("create", "update", "replace", "delete")}
    headline = (f"+{counts['create']} ~{counts['update']} ±{counts['replace']} -{counts['delete']} (live preview)"
                if changed else "no changes (live preview)")
    return Changes(headline, preview.render_markdown(stack, steps), "live preview")


def policy_findings(document: SynthJson) -> list[PolicyFinding] | None:
    """Violations from the offline policy run; None when `ops.policy_run` is not in this checkout."""
    try:
        from ops import policy_run  # type: ignore[attr-defined]
    except ModuleNotFoundError as exc:
        if exc.name in ("ops.policy_run", "pulumi_policy"):
            return None
        raise
    return [PolicyFinding(policy=str(v.policy), level=str(getattr(v.level, "value", v.level)).lower(),
                          name=v.name, resource_type=v.resource_type, message=str(v.message))
            for v in policy_run.evaluate(document)]


def command(stack: str, *, preview: bool = False, base: str | None = None, md: str | None = None,
            synth_file: str | None = None) -> str:
    """`invoke report`: assemble the report for one stack; write it to --md or print it."""
    from ops import stackfile
    from ops.console import err, out, write_output
    from ops.review import load_base, load_synth

    config = stackfile.load(stack)  # a bad stack file fails here, before any synth or cloud call
    head = load_synth(stack, synth_file)
    base_doc = load_base(stack, base) if base else None
    notes: list[str] = []
    changes = None
    if preview:
        try:
            changes = live_changes(stack)
        except OpsError as exc:
            # No CLI or no credentials (a fork's PR): the offline comparison still gives a review.
            notes.append(f"Live preview unavailable ({exc.message}); the change summary compares synth outputs.")
            err.print(f"live preview failed: {exc.message}; falling back to the synth comparison", markup=False)
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith(("ops.delivery", "pulumi")):
                raise
            notes.append(f"Live preview unavailable ({exc.name} is not installed); the change summary compares "
                         f"synth outputs.")
    if changes is None:
        changes = offline_changes(head, base_doc)
    findings = policy_findings(head)
    if findings is None:
        notes.append("Policy not run: `ops.policy_run` is not in this checkout.")
    text = render(stack, head, usage=config.usage, region=config.region, changes=changes,
                  findings=findings, base=base_doc, notes=notes)
    if md:
        write_output(md, text)
        err.print(f"wrote {md}")
    else:
        out.print(text, markup=False, highlight=False, end="")
    return text


def _finding(f: PolicyFinding) -> str:
    where = f"`{f.resource_type}` **{f.name}**" if f.name else "stack"
    return f"**{f.policy}** ({f.level}) on {where}: {f.message}"
