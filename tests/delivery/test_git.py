"""git facts against a real throwaway repository."""

from __future__ import annotations

import subprocess

import pytest

from ops.delivery.git import Git, https_url


@pytest.fixture
def repo(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "a.txt").write_text("a\n")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    return tmp_path, git


def test_clean_then_dirty_tree_and_branch(repo, monkeypatch):
    path, git = repo
    tree = Git(path)
    assert len(tree.sha()) == 40
    assert tree.dirty_paths() == []
    assert tree.branch() == "main"
    (path / "a.txt").write_text("changed\n")
    (path / "new.txt").write_text("untracked\n")
    assert sorted(tree.dirty_paths()) == ["a.txt", "new.txt"]
    assert tree.show("a.txt") == "a\n"
    assert tree.show("missing.txt") is None


def test_detached_head_takes_the_ci_branch(repo, monkeypatch):
    path, git = repo
    git("checkout", "-q", "--detach")
    for var in ("GITHUB_REF_NAME", "CI_COMMIT_BRANCH", "BUILDKITE_BRANCH"):
        monkeypatch.delenv(var, raising=False)
    assert Git(path).branch() is None
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    assert Git(path).branch() == "main"


@pytest.mark.parametrize("remote, url", [
    ("git@github.com:acme/refarch.git", "https://github.com/acme/refarch"),
    ("https://x-access-token:ghs_abc@github.com/acme/refarch.git", "https://github.com/acme/refarch"),
    ("ssh://git@gitlab.com/acme/refarch.git", "https://gitlab.com/acme/refarch"),
])
def test_remote_url_is_https_without_credentials(remote, url):
    assert https_url(remote) == url
