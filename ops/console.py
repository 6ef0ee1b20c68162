"""Terminal output: data on stdout, progress and errors on stderr, both through rich."""

from __future__ import annotations

from rich.console import Console


def check_output(path: str) -> None:
    """Refuse an output path that cannot be written, before any work is done for it."""
    from pathlib import Path

    from ops.errors import OpsError

    target = Path(path)
    if target.is_dir():
        raise OpsError(f"{path}: is a directory; give a file path")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OpsError(f"{path}: {parent} is not a directory")


def write_output(path: str, text: str) -> None:
    """Write a task's output file (missing parent directories are created); a clean error otherwise."""
    from pathlib import Path

    from ops.errors import OpsError

    check_output(path)
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    except OSError as exc:
        raise OpsError(f"{path}: cannot write ({exc.strerror or exc})") from None


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
