"""The docker adapter: exact argv, the digest from buildx's metadata, the password never in argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.delivery import docker_adapter
from ops.delivery.docker_adapter import Docker
from ops.errors import OpsError
from tests.delivery.flow_fakes import DockerRunner as Runner

DIGEST = "sha256:" + "ab" * 32  # what the fake runner writes into the metadata file
REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/refarch-dev/products"


def test_buildx_build_exact_argv_and_digest():
    runner = Runner()
    digest = Docker(runner).buildx_build(
        context="services/products", repository=REPO, git_sha="a" * 40, architecture="ARM64",
        source_url="https://github.com/acme/refarch", created="2026-11-27T18:30:00Z", push=True)
    assert digest == DIGEST
    argv, stdin = runner.calls[0]
    metadata = argv[argv.index("--metadata-file") + 1]
    assert argv == [
        "docker", "buildx", "build", "--platform", "linux/arm64",
        "--tag", f"{REPO}:{'a' * 40}",
        "--label", f"org.opencontainers.image.revision={'a' * 40}",
        "--label", "org.opencontainers.image.source=https://github.com/acme/refarch",
        "--label", "org.opencontainers.image.created=2026-11-27T18:30:00Z",
        "--cache-from", f"type=registry,ref={REPO}:buildcache",
        "--cache-to", f"type=registry,ref={REPO}:buildcache,mode=max",
        "--sbom=true", "--provenance=mode=max",
        "--metadata-file", metadata,
        "--push", "services/products",
    ]
    assert stdin is None
    assert not Path(metadata).exists()  # the temporary metadata file is cleaned up


def test_x86_service_builds_amd64_and_no_push_flag_without_push():
    runner = Runner()
    Docker(runner).buildx_build(context="c", repository=REPO, git_sha="b" * 40, architecture="X86_64",
                                source_url=None, created="t", push=False)
    argv = runner.calls[0][0]
    assert argv[argv.index("--platform") + 1] == "linux/amd64"
    assert "--push" not in argv
    assert not any(a.startswith("org.opencontainers.image.source") for a in argv)


def test_missing_digest_in_metadata_is_a_clear_error():
    with pytest.raises(OpsError, match="containerimage.digest"):
        Docker(Runner(digest=None)).buildx_build(context="c", repository=REPO, git_sha="c" * 40,
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


def test_copy_keeps_the_digest_with_imagetools_create():
    runner = Runner()
    Docker(runner).copy(f"{REPO}@{DIGEST}", "999999999999.dkr.ecr.us-east-1.amazonaws.com/refarch-prod/products:t")
    assert runner.calls[0][0] == ["docker", "buildx", "imagetools", "create", "--tag",
                                  "999999999999.dkr.ecr.us-east-1.amazonaws.com/refarch-prod/products:t",
                                  f"{REPO}@{DIGEST}"]


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
