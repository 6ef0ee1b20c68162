"""The deployment figures of bench/deployment_bench.py hold their goals (computed, not timed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "deployment_bench.py"


def load():
    spec = importlib.util.spec_from_file_location("deployment_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_dev_rolls_in_35_seconds_and_prod_rolls_back_a_bad_release_within_4_minutes():
    bench = load()
    dev, staging, prod = (bench.figures(stack) for stack in ("dev", "staging", "prod"))
    assert (dev.strategy, dev.rolling_lower_bound) == ("rolling", 35)
    assert prod.detection == 240 and prod.alarm == "refarch-prod-service-products-5xx-rate"
    # 20 s health checks + 5 min at 10 % + 5 min bake + 15 s drain; the hook adds at most 3 x 2 x 10 s + 2 x 15 s.
    assert (prod.strategy, prod.deployment_lower_bound, prod.hook_worst_case) == ("canary", 635, 90)
    assert staging.deployment_lower_bound == 635
    assert "| prod | canary | 35 s | 635 s (10.6 min) | 90 s | 240 s (4.0 min) |" in bench.table([prod])
