"""`cd ci/bootstrap && pulumi up`: the one-time CI identity, state bucket and secrets key of an account."""

import sys
from pathlib import Path

# This folder is a Pulumi project, not a package: import its module by its own unique name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from refarch_ci_bootstrap import BootstrapConfig, build  # noqa: E402

build(BootstrapConfig.from_pulumi())
