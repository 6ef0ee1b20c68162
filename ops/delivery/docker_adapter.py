"""The one thin adapter over the `docker` CLI (subprocess); the flows call nothing else of Docker.

Every command is echoed before it runs (and only echoed under --dry-run). The registry password
goes to `docker login` on stdin: it is never part of an argv, an echo or an error message.
"""

from __future__ import annotations

import json
import os
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
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


@dataclass
class Result:
    returncode: int
    stdout: str = ""
    stderr: str = ""


class Runner(Protocol):
    def __call__(self, argv: list[str], *, input: str | None = None, capture: bool = False,
                 env: dict[str, str] | None = None) -> Result: ...


def run_subprocess(argv: list[str], *, input: str | None = None, capture: bool = False,
                   env: dict[str, str] | None = None) -> Result:
    # Builds stream their progress straight to the terminal; short commands are captured so
    # their failure can be reported in one line.
    try:
        done = subprocess.run(argv, input=input, text=True, cwd=ROOT, env={**os.environ, **env} if env else None,
                              capture_output=capture, check=False)
    except FileNotFoundError:
        raise OpsError(f"Docker is not installed (or not on PATH): {INSTALL_URL}") from None
    return Result(done.returncode, done.stdout or "", done.stderr or "")


def ensure_cli() -> None:
    if shutil.which("docker") is None:
        raise OpsError(f"Docker is not installed (or not on PATH): {INSTALL_URL}")


class Docker:
    def __init__(self, runner: Runner = run_subprocess, dry_run: bool = False, driver: str | None = None):
        self.runner = runner
        self.dry_run = dry_run
        # The buildx builder's driver; None: asked of `docker buildx inspect` on the first build.
        self.driver = driver

    ensure_cli = staticmethod(ensure_cli)

    def buildx_build(self, *, context: str, repository: str, git_sha: str, architecture: str,
                     source_url: str | None, created: str, push: bool, tag: str | None = None,
                     base_image: str | None = None, source_date_epoch: int | None = None) -> str | None:
        """Build one image; pushed: returns its digest (`sha256:...`) from buildx's metadata.

        Without push the image is loaded into the local engine and there is no registry digest:
        None is returned and the caller says so.
        """
        full = self._full_builder()
        with tempfile.TemporaryDirectory(prefix="refarch-build-") as tmp:
            metadata = Path(tmp) / "metadata.json"
            argv = build_argv(context=context, repository=repository, git_sha=git_sha,
                              platform=PLATFORMS[architecture], source_url=source_url, created=created,
                              push=push, metadata_file=str(metadata), tag=tag, base_image=base_image,
                              attest=full)
            if not self._run(argv, what=f"docker buildx build of {context}", capture=False,
                             env=_epoch_env(source_date_epoch)):
                return None
            return read_digest(metadata) if push else None

    def login(self, registry: str, username: str, password: str) -> None:
        self._run(["docker", "login", "--username", username, "--password-stdin", registry],
                  what=f"docker login to {registry}", input=password)

    def copy(self, src_ref: str, dst_ref: str) -> None:
        """Copy an image between repositories by digest, the digest unchanged.

        `imagetools create` copies one image index byte for byte, but wraps a lone manifest in a new
        index (a new digest). Images built with SBOM and provenance are indexes; anything else is
        refused before anything is pushed.
        """
        if not self.dry_run:
            kind = self.media_type(src_ref)
            if kind not in INDEX_TYPES:
                raise OpsError(f"{src_ref} is a single manifest ({kind}), not an image index: copying it would "
                               f"change its digest; build it with a docker-container builder (SBOM and "
                               f"provenance make every pushed image an index)")
        self._run(["docker", "buildx", "imagetools", "create", "--tag", dst_ref, src_ref],
                  what=f"copy of {src_ref}")

    def media_type(self, ref: str) -> str:
        """The media type of the manifest the registry serves for `ref`."""
        argv = ["docker", "buildx", "imagetools", "inspect", "--raw", ref]
        result = self.runner(argv, capture=True)
        if result.returncode != 0:
            raise OpsError(f"cannot read {ref} from its registry: {_tail(result.stderr or result.stdout)}")
        try:
            return str(json.loads(result.stdout).get("mediaType") or "unknown")
        except (ValueError, AttributeError):
            raise OpsError(f"the registry served no manifest JSON for {ref}") from None

    def _full_builder(self) -> bool:
        """Whether the builder can export registry cache, SBOM and provenance (not the `docker` driver)."""
        if self.driver is None and not self.dry_run:
            result = self.runner(["docker", "buildx", "inspect"], capture=True)
            self.driver = next((line.split(":", 1)[1].strip() for line in result.stdout.splitlines()
                                if line.strip().startswith("Driver:")), "unknown")
        if self.driver != "docker":
            return True
        err.print("the buildx builder uses the `docker` driver: no registry cache, SBOM or provenance "
                  "(CI creates a docker-container builder; locally: `docker buildx create --use`)", markup=False)
        return False

    def _run(self, argv: list[str], *, what: str, input: str | None = None, capture: bool = True,
             env: dict[str, str] | None = None) -> bool:
        shown = " ".join(argv) if not env else " ".join([*(f"{k}={v}" for k, v in env.items()), *argv])
        err.print(("would run: " if self.dry_run else "$ ") + shown, markup=False, highlight=False)
        if self.dry_run:
            return False
        # Only builds carry an env: runners that never build need not accept one.
        result = (self.runner(argv, input=input, capture=capture, env=env) if env is not None
                  else self.runner(argv, input=input, capture=capture))
        if result.returncode != 0:
            detail = _tail(result.stderr or result.stdout)
            if input:
                detail = detail.replace(input, "[secret]")
            raise OpsError(f"{what} failed (exit {result.returncode})" + (f": {detail}" if detail else
                                                                          ": see the output above"))
        return True


def _epoch_env(epoch: int | None) -> dict[str, str] | None:
    # buildx passes SOURCE_DATE_EPOCH to BuildKit, which then stamps layers and history with the
    # commit's time instead of now: the same commit builds to the same digest.
    return None if epoch is None else {"SOURCE_DATE_EPOCH": str(epoch)}


def build_argv(*, context: str, repository: str, git_sha: str, platform: str, source_url: str | None,
               created: str, push: bool, metadata_file: str, tag: str | None = None,
               base_image: str | None = None, attest: bool = True) -> list[str]:
    # Labels come from the Dockerfile's ARGs (one place); `created` is the commit's time, never
    # the build's, so nothing in the image config varies between two builds of one commit.
    argv = ["docker", "buildx", "build", "--platform", platform, "--tag", f"{repository}:{tag or git_sha}",
            "--build-arg", f"REVISION={git_sha}", "--build-arg", f"CREATED={created}"]
    if source_url:
        argv += ["--build-arg", f"SOURCE={source_url}"]
    if base_image:
        argv += ["--build-arg", f"BASE_IMAGE={base_image}"]
    if attest:
        cache = f"type=registry,ref={repository}:{BUILD_CACHE_TAG}"
        argv += ["--cache-from", cache]
        if push:
            # Cache export, SBOM and provenance travel with the pushed image only.
            argv += ["--cache-to", f"{cache},mode=max", "--sbom=true", "--provenance=mode=max"]
    argv += ["--metadata-file", metadata_file, "--push" if push else "--load", context]
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
