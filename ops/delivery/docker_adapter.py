"""The one thin adapter over the `docker` CLI (subprocess); the flows call nothing else of Docker.

Every command is echoed before it runs (and only echoed under --dry-run). The registry password
goes to `docker login` on stdin: it is never part of an argv, an echo or an error message.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from infra.config import BUILD_CACHE_TAG
from ops.console import err
from ops.errors import OpsError

ROOT = Path(__file__).resolve().parents[2]
INSTALL_URL = "https://docs.docker.com/get-docker/"
PLATFORMS = {"ARM64": "linux/arm64", "X86_64": "linux/amd64"}


@dataclass
class Result:
    returncode: int
    stdout: str = ""
    stderr: str = ""


class Runner(Protocol):
    def __call__(self, argv: list[str], *, input: str | None = None, capture: bool = False) -> Result: ...


def run_subprocess(argv: list[str], *, input: str | None = None, capture: bool = False) -> Result:
    # Builds stream their progress straight to the terminal; short commands are captured so
    # their failure can be reported in one line.
    try:
        done = subprocess.run(argv, input=input, text=True, cwd=ROOT,
                              capture_output=capture, check=False)
    except FileNotFoundError:
        raise OpsError(f"Docker is not installed (or not on PATH): {INSTALL_URL}") from None
    return Result(done.returncode, done.stdout or "", done.stderr or "")


def ensure_cli() -> None:
    if shutil.which("docker") is None:
        raise OpsError(f"Docker is not installed (or not on PATH): {INSTALL_URL}")


class Docker:
    def __init__(self, runner: Runner = run_subprocess, dry_run: bool = False):
        self.runner = runner
        self.dry_run = dry_run

    ensure_cli = staticmethod(ensure_cli)

    def buildx_build(self, *, context: str, repository: str, git_sha: str, architecture: str,
                     source_url: str | None, created: str, push: bool, tag: str | None = None) -> str | None:
        """Build (and push) one image; returns its digest (`sha256:...`) from buildx's metadata."""
        with tempfile.TemporaryDirectory(prefix="refarch-build-") as tmp:
            metadata = Path(tmp) / "metadata.json"
            argv = build_argv(context=context, repository=repository, git_sha=git_sha,
                              platform=PLATFORMS[architecture], source_url=source_url, created=created,
                              push=push, metadata_file=str(metadata), tag=tag)
            if not self._run(argv, what=f"docker buildx build of {context}", capture=False):
                return None
            return read_digest(metadata)

    def login(self, registry: str, username: str, password: str) -> None:
        self._run(["docker", "login", "--username", username, "--password-stdin", registry],
                  what=f"docker login to {registry}", input=password)

    def copy(self, src_ref: str, dst_ref: str) -> None:
        """Copy an image between repositories; a single source keeps its manifest, so its digest."""
        self._run(["docker", "buildx", "imagetools", "create", "--tag", dst_ref, src_ref],
                  what=f"copy of {src_ref}")

    def _run(self, argv: list[str], *, what: str, input: str | None = None, capture: bool = True) -> bool:
        err.print(("would run: " if self.dry_run else "$ ") + " ".join(argv), markup=False, highlight=False)
        if self.dry_run:
            return False
        result = self.runner(argv, input=input, capture=capture)
        if result.returncode != 0:
            detail = _tail(result.stderr or result.stdout)
            if input:
                detail = detail.replace(input, "[secret]")
            raise OpsError(f"{what} failed (exit {result.returncode})" + (f": {detail}" if detail else
                                                                          ": see the output above"))
        return True


def build_argv(*, context: str, repository: str, git_sha: str, platform: str, source_url: str | None,
               created: str, push: bool, metadata_file: str, tag: str | None = None) -> list[str]:
    cache = f"type=registry,ref={repository}:{BUILD_CACHE_TAG}"
    argv = ["docker", "buildx", "build", "--platform", platform,
            "--tag", f"{repository}:{tag or git_sha}",
            "--label", f"org.opencontainers.image.revision={git_sha}"]
    if source_url:
        argv += ["--label", f"org.opencontainers.image.source={source_url}"]
    argv += ["--label", f"org.opencontainers.image.created={created}",
             "--cache-from", cache,
             "--cache-to", f"{cache},mode=max",
             "--sbom=true", "--provenance=mode=max",
             "--metadata-file", metadata_file]
    if push:
        argv.append("--push")
    argv.append(context)
    return argv


def read_digest(metadata_file: Path) -> str:
    try:
        data = json.loads(metadata_file.read_text())
    except (OSError, ValueError) as exc:
        raise OpsError(f"docker buildx wrote no readable metadata file ({exc})") from None
    digest = data.get("containerimage.digest") if isinstance(data, dict) else None
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise OpsError("docker buildx metadata has no containerimage.digest: "
                       "use a docker-container builder (`docker buildx create --use`)")
    return digest


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(ln.strip() for ln in text.strip().splitlines()[-lines:] if ln.strip())
