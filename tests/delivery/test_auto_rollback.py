"""The automatic rollback of a failed deploy redeploys the last good release whole, as `invoke rollback`
does: its commit's program and stack config (a git worktree) with its images, or refuses with why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ops import stackfile
from ops.delivery.git import Git
from ops.delivery.ledger import config_hash
from ops.delivery.lock import StackLock
from ops.errors import OpsError
from tests.delivery.flow_fakes import STACK, World, git


def _stack_file(az_count: int) -> str:
    """stacks/Pulumi.test.yaml: the dev stack with the conftest's two services, instant bake."""
    values: dict[str, Any] = stackfile.read_values("dev")
    values["refarch:services"] = [{"name": name, "build": f"services/{name}", "routes": [{"path": f"/{name}/*"}]}
                                  for name in ("products", "orders")]
    values["refarch:environment"] = "dev"
    values["refarch:delivery"] = {"protected": False, "bake_seconds": 0, "rollback_on_failure": True}
    values["refarch:network"] = {**dict(values["refarch:network"]), "az_count": az_count}  # type: ignore[arg-type]
    return yaml.safe_dump({"config": values}, sort_keys=False)


@pytest.fixture
def repo(tmp_path):
    """A clone whose older commit has three AZs in the stack file and whose HEAD has two."""
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "stacks" / f"Pulumi.{STACK}.yaml").write_text(_stack_file(3))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "three AZs")
    old = git(repo, "rev-parse", "HEAD")
    (repo / "stacks" / f"Pulumi.{STACK}.yaml").write_text(_stack_file(2))
    git(repo, "commit", "-q", "-am", "two AZs")
    return repo, old


def world_at(clients, deployed_stack, gateway, repo: Path) -> tuple[World, list[Any]]:
    git = Git(repo)
    world = World(clients, deployed_stack, gateway, git=git,  # type: ignore[arg-type]
                  config=stackfile.load(STACK, repo / "stacks" / f"Pulumi.{STACK}.yaml"))
    trees: list[Any] = []

    def pulumi(work_dir: Path | None = None) -> Any:
        trees.append(work_dir)  # None: this checkout's program
        return world.stack

    world.deps.pulumi = pulumi
    return world, trees


def good_release_from(world: World, sha: str, images: dict[str, str], config: Any) -> Any:
    """A verified release made earlier from commit `sha`."""
    ledger = world.ledger()
    good = ledger.begin(sha, images, config_hash(config), "deploy")
    ledger.finish(good.id, "succeeded", verified=True)
    return ledger.get(good.id)


def test_the_failed_deploy_rolls_back_to_the_previous_commits_tree(clients, deployed_stack, gateway, repo):
    repo, old = repo
    world, trees = world_at(clients, deployed_stack, gateway, repo)
    good = good_release_from(world, old, deployed_stack.images, _config_of(repo, old))
    new = world.push_images()
    seen: dict[str, Any] = {}

    def at_each_full_up(target_urns):
        if target_urns is None and "broke" not in seen:
            seen["broke"] = True
            gateway.set("/products/", 500)  # the new release fails its smoke check
        elif target_urns is None:
            tree = trees[-1]  # the rollback's up: which program and stack file does it run?
            seen["tree"] = tree
            seen["sha"] = Git(tree).sha()
            seen["az_count"] = stackfile.load(STACK, tree / "stacks" / f"Pulumi.{STACK}.yaml").network.az_count
            gateway.set("/products/", 200)

    world.stack.on_up.append(at_each_full_up)

    with pytest.raises(OpsError) as failure:
        world.deploy(new)

    # The deploy ran this checkout's program; the rollback that commit's, from its own worktree.
    assert trees[0] is None and seen["tree"] not in (None, repo)
    assert (seen["sha"], seen["az_count"]) == (old, 3)
    assert world.stack.changes() == [("set_images", new), ("up", None), ("set_images", good.images), ("up", None)]
    back, failed = world.ledger().history(limit=2)
    assert (failed.outcome, failed.verified, failed.images) == ("failed", False, new)
    assert (back.kind, back.outcome, back.verified, back.replaces) == ("rollback", "succeeded", True, failed.id)
    assert not seen["tree"].exists()  # the worktree is gone again
    assert (back.git_sha, back.images) == (old, good.images)  # the release as a whole: its commit, its images
    assert back.config_hash == config_hash(_config_of(repo, old)) != config_hash(world.config)
    assert f"redeployed from {good.id}'s commit {old[:12]}: its program, stack config and images" in back.notes
    assert f"rolled back to release {good.id} as release {back.id} (verified)" in failure.value.message
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    assert StackLock(clients, STACK, "me").holder() is None


def _config_of(repo: Path, sha: str) -> Any:
    path = repo.parent / "at-commit.yaml"
    path.write_text(git(repo, "show", f"{sha}:stacks/Pulumi.{STACK}.yaml") + "\n")
    return stackfile.load(STACK, path)


def test_a_previous_release_whose_commit_is_not_here_is_refused_and_nothing_is_half_applied(
        clients, deployed_stack, gateway, repo):
    repo, _ = repo
    world, trees = world_at(clients, deployed_stack, gateway, repo)
    good = good_release_from(world, "e" * 40, deployed_stack.images, world.config)  # a commit this clone lacks
    new = world.push_images()
    world.stack.on_up.append(lambda urns: gateway.set("/products/", 500))

    with pytest.raises(OpsError) as failure:
        world.deploy(new)

    message = failure.value.message
    assert message.startswith("release ")
    assert (f"failed verification (smoke: products: GET {gateway.url}/products/ -> 500" in message)
    assert (f"and stays recorded as failed; the automatic rollback to {good.id} is refused, nothing was changed: "
            f"release {good.id} was made from commit eeeeeeeeeeee, which this clone does not have: fetch it") in message
    assert world.stack.changes() == [("set_images", new), ("up", None)]  # no rollback up, no config rewrite
    assert trees == [None]
    failed, before = world.ledger().history()
    assert (failed.outcome, failed.verified, failed.images) == ("failed", False, new)
    assert before.id == good.id and before.outcome == "succeeded"
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    assert StackLock(clients, STACK, "me").holder() is None
