"""Synth wall time: whole `invoke synth` processes (what a user waits for) and in-process synths.

Goals (issue 9): a whole `invoke synth --stack prod` process <= 2.0 s, 100 services <= 6.5 s,
growing linearly. Not a timed test: run it on the machine whose figures you quote.
Run: .venv/bin/python bench/synth_bench.py [--repeat 3] [--sizes 10,50,100]

Generated stacks are prod's file with n services, each with its own route, database and cache
access. They deploy `rolling`: a traffic-shifting strategy puts two listener rules per service
on the listener (production + test), and ALB's quota of 100 rules stops that at 50 services.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def generated_file(n: int) -> dict:
    document = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())
    config = document["config"]
    template = config["refarch:services"][0]
    config["refarch:environment"] = "prod"
    config["refarch:services"] = [
        {**copy.deepcopy(template), "name": f"svc-{i:03d}", "routes": [{"path": f"/svc-{i:03d}*"}]} for i in range(n)]
    config["refarch:delivery"] = {**config.get("refarch:delivery", {}), "deployment": {"strategy": "rolling"}}
    return document


def process_seconds(stack: str, repeat: int) -> tuple[float, float, int]:
    """Median wall and CPU time of a whole `invoke synth --stack S --out F` process, and its resources.

    CPU time (user + sys of the child) is quoted beside wall time: on a shared machine the wall
    time also measures the neighbours.
    """
    import resource

    times, cpus, count = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "synth.json"
        for _ in range(repeat):
            started = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-m", "invoke", "synth", "--stack", stack, "--out", str(out)],
                           cwd=ROOT, check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"})
            times.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        import json

        count = sum(1 for r in json.loads(out.read_text())["resources"]
                    if not r["type"].startswith(("refarch:", "pulumi:")))
    return statistics.median(times), statistics.median(cpus), count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="10,50,100")
    args = parser.parse_args()
    print(f"{'whole process':<22}{'resources':>10}{'wall s':>10}{'cpu s':>10}{'cpu ms/resource':>17}")

    def show(label: str, seconds: float, cpu: float, count: int) -> None:
        print(f"{label:<22}{count:>10}{seconds:>10.2f}{cpu:>10.2f}{1000 * cpu / count:>17.2f}", flush=True)

    for stack in ("dev", "staging", "prod"):
        show(stack, *process_seconds(stack, args.repeat))
    for n in (int(size) for size in args.sizes.split(",")):
        name = f"bench-{n}"
        path = ROOT / "stacks" / f"Pulumi.{name}.yaml"
        path.write_text(yaml.safe_dump(generated_file(n), sort_keys=False))
        try:
            measured = process_seconds(name, args.repeat)
        finally:
            path.unlink()
        show(f"{n} services", *measured)


if __name__ == "__main__":
    main()
