"""Schemathesis, from the schema the service serves, against the real app under uvicorn with
real PostgreSQL and Redis: every check, every phase (examples, coverage, fuzzing, stateful).

Zero failures is the contract: the schema says exactly what the server accepts and answers.
It runs the way staging and prod do: writes need a bearer token (a test issuer's JWKS over HTTP),
so the `ignored_auth` check also proves a write without the token is refused.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

from products.config import Settings

# Enough to cover every operation and status in well under a minute on two shared cores.
MAX_EXAMPLES = int(os.environ.get("PRODUCTS_SCHEMATHESIS_EXAMPLES", "25"))
SEED = os.environ.get("PRODUCTS_SCHEMATHESIS_SEED", "20261202")  # fixed: CI is reproducible


def test_schemathesis_finds_nothing(settings: Settings, serve, issuer, tmp_path) -> None:
    st = shutil.which("st", path=os.path.dirname(sys.executable)) or "st"
    secured = dataclasses.replace(settings, auth=issuer.settings())
    with serve(secured) as base:
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
                "--header",
                f"Authorization: Bearer {issuer.token()}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=tmp_path,  # its cache (.schemathesis/) stays out of the source tree
            env=os.environ | {"SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-15000:]
    assert "Stateful" in output or "stateful" in output, output[-3000:]
