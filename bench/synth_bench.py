"""Synth wall time per shipped stack and for generated stacks of N services (not a timed test).

Goals (issue 2): prod <= 2.5 s, 100 services <= 10 s, growing linearly.
Run: .venv/bin/python bench/synth_bench.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.config import parse  # noqa: E402
from ops import stackfile  # noqa: E402
from ops.synth import run  # noqa: E402


def generated(n: int):
    """Prod's config with n services, each with its own route, database and cache access."""
    values = stackfile.read_values("prod")
    template = values["refarch:services"][0]
    values["refarch:services"] = [
        {**template, "name": f"svc-{i:03d}", "routes": [{"path": f"/svc-{i:03d}*"}]} for i in range(n)
    ]
    return parse(values, "prod", "generated")


def timed(config, stack: str, repeat: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        count = len(run(config, stack).resources)
        times.append(time.perf_counter() - started)
    return statistics.median(times), count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run(stackfile.load("dev"), "dev")  # warm imports: pulumi_aws modules load once per process
    print(f"{'stack':<16}{'resources':>10}{'median s':>10}{'ms/resource':>13}")
    for stack in stackfile.known_stacks():
        seconds, count = timed(stackfile.load(stack), stack, args.repeat)
        print(f"{stack:<16}{count:>10}{seconds:>10.2f}{1000 * seconds / count:>13.2f}")
    for n in (10, 50, 100):
        seconds, count = timed(generated(n), "prod", max(1, args.repeat - 1))
        print(f"{f'{n} services':<16}{count:>10}{seconds:>10.2f}{1000 * seconds / count:>13.2f}")


if __name__ == "__main__":
    main()
