"""How long a deployment takes and how fast ECS reacts to a bad one, per shipped stack (not a timed test).

Computed from each stack's config and from the deployment alarms its synth registers:
- rolling lower bound: the new tasks' health checks (healthy threshold x interval) plus the old
  tasks' deregistration delay, the part of a rolling deployment no setting can shorten (goal: dev
  <= 35 s); ECS then bakes on the deployment alarms and the pipeline watches them out to the
  alarms' window since the start;
- traffic-shifting deployment, lower bound: new tasks healthy, then every bake (canary, or each
  linear step, then the final one), then the old tasks drained; plus, in the worst case, the smoke
  hook's retries;
- worst case from a bad release reaching traffic to ECS starting the rollback: datapoints to alarm
  x period of the fastest traffic alarm, plus the evaluation delay (goal: prod <= 4 minutes).
Task start (image pull, application start) and ECS's own API latencies are not in the config and
are not counted: the times are lower bounds of the wall clock, the detection time an upper bound.

Run: .venv/bin/python bench/deployment_bench.py [--markdown]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.aws.deployment import HOOK_ATTEMPTS, HOOK_RETRY_SECONDS  # noqa: E402
from infra.config.deployment import ALARM_WINDOW_SECONDS, EVALUATION_DELAY_SECONDS  # noqa: E402
from ops import stackfile  # noqa: E402
from ops.synth import synth_stack  # noqa: E402

STACKS = ("dev", "staging", "prod")
GOALS = {"rolling_dev": 35, "detection_prod": 240}


@dataclass
class Figures:
    stack: str
    strategy: str
    rolling_lower_bound: int  # s
    deployment_lower_bound: int  # s, the whole deployment
    hook_worst_case: int  # s the smoke hook adds at most (traffic-shifting only)
    detection: int  # s, bad release in traffic -> ECS starts the rollback
    alarm: str  # the alarm that sets `detection`


def figures(stack: str) -> Figures:
    cfg = stackfile.load(stack)
    deployment = cfg.delivery.deployment
    health = max(s.health_check.healthy_threshold * s.health_check.interval for s in cfg.services)
    drain = max(s.health_check.deregistration_delay for s in cfg.services)
    rolling = health + drain
    synth = synth_stack(stack)
    alarms = {a["inputs"]["name"]: a["inputs"] for a in synth.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    fastest = None
    for svc in cfg.services:
        for name in synth.outputs["services"][svc.name]["deployment_alarm_names"]:
            a = alarms[name]
            period = a.get("period") or max(q["metric"]["period"] for q in a["metricQueries"] if "metric" in q)
            seconds = a["datapointsToAlarm"] * period + EVALUATION_DELAY_SECONDS
            if name.endswith("-5xx-rate") and (fastest is None or seconds < fastest[0]):
                fastest = (seconds, name)
    assert fastest is not None, f"{stack}: no 5xx deployment alarm"
    if deployment.rolling:
        # ECS bakes on the alarms; the pipeline watches them out to the window since the start.
        total, hook = max(rolling, ALARM_WINDOW_SECONDS), 0
    else:
        total = health + 60 * (deployment.shifting_minutes + deployment.bake_minutes) + drain
        timeout = cfg.delivery.smoke_timeout_seconds
        hook = HOOK_ATTEMPTS * 2 * timeout + (HOOK_ATTEMPTS - 1) * HOOK_RETRY_SECONDS if deployment.smoke_hook else 0
    return Figures(stack, deployment.strategy, rolling, total, hook, fastest[0], fastest[1])


def minutes(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{seconds} s ({seconds / 60:.1f} min)"


def table(rows: list[Figures]) -> str:
    lines = ["| stack | strategy | rolling lower bound | whole deployment, lower bound | + smoke hook, worst case "
             "| bad release in traffic -> ECS rolls back, worst case |",
             "| --- | --- | --- | --- | --- | --- |"]
    for f in rows:
        lines.append(f"| {f.stack} | {f.strategy} | {f.rolling_lower_bound} s | {minutes(f.deployment_lower_bound)} "
                     f"| {minutes(f.hook_worst_case) if f.hook_worst_case else '-'} | {minutes(f.detection)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown table")
    options = parser.parse_args()
    rows = [figures(stack) for stack in STACKS]
    print(table(rows))
    if not options.markdown:
        dev, prod = rows[0], rows[-1]
        print(f"\ngoals: dev rolling lower bound {dev.rolling_lower_bound} s <= {GOALS['rolling_dev']} s: "
              f"{'met' if dev.rolling_lower_bound <= GOALS['rolling_dev'] else 'MISSED'}; prod detection "
              f"{prod.detection} s <= {GOALS['detection_prod']} s: "
              f"{'met' if prod.detection <= GOALS['detection_prod'] else 'MISSED'} ({prod.alarm})")
    ok = rows[0].rolling_lower_bound <= GOALS["rolling_dev"] and rows[-1].detection <= GOALS["detection_prod"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
