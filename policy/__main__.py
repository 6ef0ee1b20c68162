"""The CrossGuard pack's entry point: `pulumi preview --policy-pack policy`.

Constructing `PolicyPack` starts the analyzer's gRPC server and blocks, so it is the only thing
here; the policies live in `<topic>_policies.py` modules joined by `refarch_policies.py`, which
tests and `invoke policy` import.
"""

import sys
from pathlib import Path

# The folder is not a package: make the policies module importable by its own (unique) name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402
from refarch_policies import POLICIES  # noqa: E402

PolicyPack(
    name="refarch-baseline",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
