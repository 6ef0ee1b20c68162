"""`invoke review`: synth, policy, cost, diagram and report for several stacks in one process.

CI reviews every stack on each pull request; separate `invoke synth/policy/cost/diagram/report`
processes pay Python's and pulumi_aws's imports and the synth itself once per task and stack.
Here each stack is synthesized once and every section is computed from that one synth output.
A stack that fails (bad config, mandatory violations) does not stop the others; the exit code says
whether any failed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ops.errors import OpsError


@dataclass
class StackReview:
    stack: str
    resources: int = 0
    mandatory: int = 0
    advisory: int = 0
    monthly: float | None = None
    seconds: float = 0.0
    problem: str | None = None
    files: list[str] = field(default_factory=list)


def review_stack(stack: str, out_dir: Path, base_dir: Path | None = None) -> StackReview:
    from infra.config import ConfigError
    from ops import stackfile
    from ops.console import write_output
    from ops.review import cost, diagram, load_base, report
    from ops.synth import run

    started = time.perf_counter()
    result = StackReview(stack)
    try:
        config = stackfile.load(stack)
    except ConfigError as exc:
        result.problem = f"invalid stack config:\n{exc}"
        return result
    document = run(config, stack, reclaim=False).to_json()
    result.resources = sum(1 for r in document["resources"] if not r["type"].startswith(("refarch:", "pulumi:")))
    base_path = base_dir / f"{stack}.json" if base_dir else None
    base = load_base(stack, str(base_path)) if base_path and base_path.is_file() else None

    findings = report.policy_findings(document) or []
    result.mandatory = sum(1 for f in findings if f.level == "mandatory")
    result.advisory = len(findings) - result.mandatory
    try:
        result.monthly = cost.estimate(document, config.usage, config.region).total
    except OpsError:
        result.monthly = None  # the report says which section it could not price
    text = report.render(stack, document, usage=config.usage, region=config.region,
                         changes=report.offline_changes(document, base), findings=findings, base=base)
    outputs = {
        f"{stack}.json": json.dumps(document, indent=2, sort_keys=True) + "\n",
        f"{stack}-diagram.md": f"```mermaid\n{diagram.mermaid(document)}```\n",
        f"{stack}-report.md": text,
    }
    for name, body in outputs.items():
        write_output(str(out_dir / name), body)
        result.files.append(str(out_dir / name))
    if result.mandatory:
        result.problem = f"{result.mandatory} mandatory policy violation(s)"
    result.seconds = time.perf_counter() - started
    return result


def command(stacks: str, out_dir: str, base_dir: str | None = None) -> list[StackReview]:
    from rich.table import Table

    from ops.console import check_output, err, out
    from ops.review import cost

    names = [name.strip() for name in stacks.split(",") if name.strip()]
    if not names:
        raise OpsError("--stacks needs at least one stack name (e.g. dev,staging,prod)")
    target = Path(out_dir)
    if target.exists() and not target.is_dir():
        raise OpsError(f"{out_dir}: not a directory")
    check_output(str(target / "x"))
    started = time.perf_counter()
    results = [review_stack(name, target, Path(base_dir) if base_dir else None) for name in names]
    table = Table(title=f"review of {len(names)} stack(s) in {time.perf_counter() - started:.2f} s")
    for column in ("stack", "resources", "mandatory", "advisory", "monthly", "seconds", "result"):
        table.add_column(column, justify="left" if column in ("stack", "result") else "right")
    for r in results:
        table.add_row(r.stack, str(r.resources), str(r.mandatory), str(r.advisory),
                      cost.money(r.monthly) if r.monthly is not None else "not priced", f"{r.seconds:.2f}",
                      "ok" if r.problem is None else "FAILED")
    out.print(table)
    for r in results:
        if r.problem:
            err.print(f"{r.stack}: {r.problem}", markup=False)
    failed = [r.stack for r in results if r.problem]
    if failed:
        raise OpsError(f"review failed for {', '.join(failed)}", code=1)
    err.print(f"wrote {sum(len(r.files) for r in results)} files to {out_dir}")
    return results
