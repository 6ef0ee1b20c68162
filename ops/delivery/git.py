"""What the pipeline asks git: the commit, whether the tree is clean, the branch, the remote."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from ops.errors import OpsError

ROOT = Path(__file__).resolve().parents[2]

# CI checkouts are often a detached HEAD; these name the branch being built.
CI_BRANCH_VARS = ("GITHUB_REF_NAME", "CI_COMMIT_BRANCH", "BUILDKITE_BRANCH")


class Git:
    def __init__(self, root: Path = ROOT, ignore: tuple[str, ...] = ()):
        self.root = root
        self.ignore = ignore  # paths never counted as changes (links a release tree gets, rollback.py)

    def at(self, root: Path, ignore: tuple[str, ...] = ()) -> Git:
        return Git(root, ignore)

    def has_commit(self, sha: str) -> bool:
        try:
            self._git("cat-file", "-e", f"{sha}^{{commit}}")
        except OpsError:
            return False
        return True

    def add_worktree(self, path: Path, sha: str) -> None:
        self._git("worktree", "add", "--detach", str(path), sha)

    def remove_worktree(self, path: Path) -> None:
        self._git("worktree", "remove", "--force", str(path))

    def sha(self) -> str:
        return self._git("rev-parse", "HEAD")

    def commit_time(self) -> int:
        """The commit's time (Unix seconds): what a reproducible build stamps instead of now."""
        return int(self._git("log", "-1", "--format=%ct", "HEAD"))

    def dirty_paths(self) -> list[str]:
        """Modified, staged and untracked paths (untracked files can end up in an image too)."""
        lines = self._git("status", "--porcelain", "--untracked-files=normal", strip=False).splitlines()
        paths = [line[3:].split(" -> ")[-1].strip('"') for line in lines if line.strip()]
        return [p for p in paths if p.rstrip("/") not in self.ignore]

    def branch(self) -> str | None:
        name = self._git("rev-parse", "--abbrev-ref", "HEAD")
        if name != "HEAD":
            return name
        return next((os.environ[v] for v in CI_BRANCH_VARS if os.environ.get(v)), None)

    def remote_url(self) -> str | None:
        try:
            url = self._git("remote", "get-url", "origin")
        except OpsError:
            return None
        return https_url(url)

    def show(self, path: str, rev: str = "HEAD") -> str | None:
        """A file's content at `rev`, or None when it does not exist there."""
        try:
            return self._git("show", f"{rev}:{path}", strip=False)
        except OpsError:
            return None

    def _git(self, *args: str, strip: bool = True) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise OpsError("git is not installed (or not on PATH)") from None
        if done.returncode != 0:
            raise OpsError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout.strip() if strip else done.stdout


def https_url(url: str) -> str:
    """`git@host:owner/repo.git` -> `https://host/owner/repo` (the OCI source label wants a URL)."""
    url = url.strip()
    ssh = re.match(r"^(?:ssh://)?git@([^:/]+)[:/](.+?)(?:\.git)?$", url)
    if ssh:
        return f"https://{ssh.group(1)}/{ssh.group(2)}"
    url = re.sub(r"^(https?://)[^@/]+@", r"\1", url)  # never leak a token embedded in the remote
    return url.removesuffix(".git")
