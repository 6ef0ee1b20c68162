"""The delivery tasks as a user runs them: a missing tool or credential is one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).with_name("invoke"))


def invoke(*args: str, path: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run([INVOKE, *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**clean, "PATH": path, **env})


@pytest.mark.parametrize("args, message", [
    (("preview", "--stack", "dev"), "error: the Pulumi CLI is not installed: https://www.pulumi.com/docs/install/"),
    (("build", "--stack", "dev"), "error: Docker is not installed (or not on PATH): https://docs.docker.com/get-docker/"),
    (("releases", "--stack", "dev"), "error: AWS credentials not found"),
    (("destroy", "--stack", "prod"), "error: stack prod is protected (delivery.protected): destroy refused"),
])
def test_one_line_errors(tmp_path, args, message):
    done = invoke(*args, path=str(tmp_path), AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
                  AWS_EC2_METADATA_DISABLED="true")
    assert done.returncode == 1
    assert done.stderr.startswith(message), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
