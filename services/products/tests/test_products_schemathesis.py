"""Schemathesis, from the schema the service serves, against the real app under uvicorn with
real PostgreSQL and Redis: every check, every phase (examples, coverage, fuzzing, stateful).

Zero failures is the contract: the schema says exactly what the server accepts and answers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from conftest import serving

from products.config import Settings

# Enough to cover every operation and status in well under a minute on two shared cores.
MAX_EXAMPLES = int(os.environ.get("PRODUCTS_SCHEMATHESIS_EXAMPLES", "25"))


def test_schemathesis_finds_nothing(settings: Settings, tmp_path) -> None:
    st = shutil.which("st", path=os.path.dirname(sys.executable)) or "st"
    with serving(settings) as base:
        result = subprocess.run(  # noqa: S603 - fixed argv
            [
                st,
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                "20261202",
                "--workers",
                "1",
                "--request-timeout",
                "10",
                "--report-dir",
                str(tmp_path),
                "--warnings",
                "off",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=os.environ | {"SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-15000:]
    assert "Stateful" in output or "stateful" in output, output[-3000:]
