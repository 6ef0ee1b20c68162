"""The stack, top to bottom as the layer diagram reads (infra/aws/, one module per layer):

    internet -> gateway (WAF, ALB, TLS) -> services (ECS Fargate) -> database + cache
                                              autoscaling            monitoring beside all
"""

from __future__ import annotations

import sys
from pathlib import Path

# Pulumi runs this folder as a script; make `infra` importable as a package from the repo root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from infra.program import build  # noqa: E402

build()
