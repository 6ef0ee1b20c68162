"""A rollback redeploys a release whole: its commit's program and stack config, in a git worktree."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ops.delivery import release_tree
from ops.delivery.git import Git
from ops.errors import OpsError
from tests.delivery.flow_fakes import git, make_deps

ROOT = Path(__file__).resolve().parents[2]




@pytest.fixture
def repo(tmp_path):
    """A clone with two commits of the dev stack file: three AZs, then two."""
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    (repo / ".venv").mkdir()  # the checkout's virtualenv: linked into the release tree, untracked
    (repo / ".gitignore").write_text(".venv/\n")
    source = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
    assert "    az_count: 2" in source
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "root")
    (repo / "stacks" / "Pulumi.dev.yaml").write_text(source.replace("    az_count: 2", "    az_count: 3"))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "three AZs")
    old = git(repo, "rev-parse", "HEAD")
    (repo / "stacks" / "Pulumi.dev.yaml").write_text(source)
    git(repo, "commit", "-q", "-am", "two AZs")
    return repo, old


def _deps(repo: Path):
    seen = {}

    def pulumi(work_dir=None):
        seen["work_dir"] = work_dir
        return "a PulumiStack"

    return dataclasses.replace(make_deps(git=Git(repo)), pulumi=pulumi), seen


def test_the_release_commit_is_checked_out_with_its_own_stack_config_then_removed(repo):
    repo, old = repo
    deps, seen = _deps(repo)
    with release_tree.at_commit(deps, old, "20261127T183000.000Z-abc1234") as at:
        tree = at.git.root
        assert tree != repo and at.git.sha() == old
        assert at.load_config("dev").network.az_count == 3  # that commit's stack file, not HEAD's
        at.pulumi()
        assert seen["work_dir"] == tree  # the Pulumi program of that commit
        assert (tree / ".venv").is_symlink() and at.git.dirty_paths() == []  # the link is not a change
    assert not tree.exists()
    assert len(git(repo, "worktree", "list").splitlines()) == 1  # only the clone itself


def test_the_current_commit_needs_no_tree(repo):
    repo, _ = repo
    deps, _ = _deps(repo)
    with release_tree.at_commit(deps, git(repo, "rev-parse", "HEAD"), "r") as at:
        assert at is deps


def test_a_commit_this_clone_does_not_have_is_refused_with_the_reason(repo):
    repo, _ = repo
    deps, _ = _deps(repo)
    missing = "f" * 40
    with pytest.raises(OpsError, match=f"release R was made from commit {missing[:12]}, which this clone does not "
                                       f"have: fetch it .*never its images on another commit's program"):
        with release_tree.at_commit(deps, missing, "R"):
            pass
    assert len(git(repo, "worktree", "list").splitlines()) == 1
