"""The security baseline as CrossGuard policies: the pack's one list, joined from its topic modules.

Each concern lives in its own `policy/<topic>_policies.py` exposing `POLICIES` (shared helpers in
`policy_support.py`). The same list runs in two places: under `pulumi preview --policy-pack
policy` (the engine hands each validate function the resource's wire properties) and offline in
`ops/policy_run.py` over the synth JSON, which loads this file by path. A topic module that is not
listed below fails `tests/policy/test_pack.py`: none can be left out of the pack by accident.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The folder is the pack, not a package: its modules import each other by their own names.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import analytics_policies  # noqa: E402
import data_policies  # noqa: E402
import deployment_policies  # noqa: E402
import ecs_policies  # noqa: E402
import edge_policies  # noqa: E402
import encryption_policies  # noqa: E402
import gateway_policies  # noqa: E402
import iam_policies  # noqa: E402
import logging_policies  # noqa: E402
import network_policies  # noqa: E402
import protection_policies  # noqa: E402
import tagging_policies  # noqa: E402
from policy_support import Policy  # noqa: E402

TOPICS = (
    encryption_policies, logging_policies, network_policies, gateway_policies, edge_policies, ecs_policies, data_policies,
    iam_policies, protection_policies, tagging_policies, deployment_policies, analytics_policies,
)

POLICIES: list[Policy] = [policy for topic in TOPICS for policy in topic.POLICIES]
