"""The docker adapter's failure paths and secrets: the password never in argv, echo or error.

What it builds, pushes and copies is proven on the real engine (tests/engine/).
"""

from __future__ import annotations

import pytest

from ops.delivery import docker_adapter
from ops.delivery.docker_adapter import Docker
from ops.errors import OpsError
from tests.delivery.flow_fakes import DockerRunner as Runner

DIGEST = "sha256:" + "ab" * 32  # what the fake runner writes into the metadata file
REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/refarch-dev/products"


def test_missing_digest_in_metadata_is_a_clear_error():
    with pytest.raises(OpsError, match="containerimage.digest"):
        Docker(Runner(digest=None), driver="docker-container").buildx_build(context="c", repository=REPO, git_sha="c" * 40,
                                                 architecture="ARM64", source_url=None, created="t", push=True)


def test_login_sends_the_password_on_stdin_only(capsys):
    runner = Runner()
    Docker(runner).login("123456789012.dkr.ecr.us-east-1.amazonaws.com", "AWS", "s3cr3t-token")
    argv, stdin = runner.calls[0]
    assert argv == ["docker", "login", "--username", "AWS", "--password-stdin",
                    "123456789012.dkr.ecr.us-east-1.amazonaws.com"]
    assert stdin == "s3cr3t-token"
    captured = capsys.readouterr()
    assert "s3cr3t-token" not in captured.out + captured.err


def test_failed_login_never_echoes_the_password(capsys):
    runner = Runner(returncode=1, stderr="Error: denied for password s3cr3t-token")
    with pytest.raises(OpsError) as failure:
        Docker(runner).login("registry", "AWS", "s3cr3t-token")
    assert "s3cr3t-token" not in failure.value.message
    assert "[secret]" in failure.value.message


def test_dry_run_prints_and_runs_nothing(capsys):
    runner = Runner()
    assert Docker(runner, dry_run=True).buildx_build(
        context="c", repository=REPO, git_sha="d" * 40, architecture="ARM64", source_url=None,
        created="t", push=True) is None
    assert runner.calls == []
    assert "would run: docker buildx build" in capsys.readouterr().err


def test_ensure_cli_without_docker(monkeypatch):
    monkeypatch.setattr(docker_adapter.shutil, "which", lambda name: None)
    with pytest.raises(OpsError, match="^Docker is not installed"):
        docker_adapter.ensure_cli()
