"""A release is its program, its stack config and its images: a rollback redeploys all three.

The target release's commit is checked out into a temporary git worktree and the deploy path runs
from there (the Pulumi program and `stacks/Pulumi.<stack>.yaml` of that commit), with this
checkout's virtual environments linked in (the CLI runs the program and the policy pack from
`.venv` and `policy/venv`, relative to the tree). A commit this clone does not have is refused
with the reason: a rollback never mixes the images of one release with the program of another.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ops.errors import OpsError

LINKED = (".venv", "policy/venv")


@contextmanager
def at_commit(deps: Any, sha: str, release_id: str) -> Iterator[Any]:
    """`deps` whose git, Pulumi program and stack config are those of commit `sha`."""
    if sha == deps.git.sha():
        yield deps
        return
    if not deps.git.has_commit(sha):
        raise OpsError(f"release {release_id} was made from commit {sha[:12]}, which this clone does not have: "
                       f"fetch it (`git fetch origin {sha}`; CI checkouts need full history, fetch-depth: 0) "
                       f"and retry; a release is redeployed as a whole (program, stack config, images), "
                       f"never its images on another commit's program")
    from ops import stackfile

    parent = Path(tempfile.mkdtemp(prefix="refarch-release-"))
    tree = parent / sha[:12]
    deps.git.add_worktree(tree, sha)
    try:
        for rel in LINKED:
            source = deps.git.root / rel
            if source.exists() and not (tree / rel).exists():
                (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                (tree / rel).symlink_to(source.resolve(), target_is_directory=True)
        yield dataclasses.replace(
            deps, git=deps.git.at(tree, ignore=LINKED),
            pulumi=functools.partial(deps.pulumi, work_dir=tree),
            load_config=lambda stack: stackfile.load(stack, tree / "stacks" / f"Pulumi.{stack}.yaml"))
    finally:
        deps.git.remove_worktree(tree)
        shutil.rmtree(parent, ignore_errors=True)
