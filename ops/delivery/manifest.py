"""The build manifest: which digest each built service has. Written by build, read by deploy.

`{"git_sha": "...", "created_at": "...Z", "images": {"products": "<repo>@sha256:<64 hex>"}}`
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ops.errors import OpsError

DEFAULT_PATH = Path("out/manifest.json")
PINNED = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Manifest:
    git_sha: str
    created_at: str
    images: dict[str, str]


def read(path: Path) -> Manifest:
    if not path.is_file():
        raise OpsError(f"no build manifest at {path}: run `invoke build --push --stack <stack>` first")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise OpsError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise OpsError(f"{path}: expected an object with git_sha, created_at and images")
    problems = [f"{key}: missing" for key in ("git_sha", "created_at", "images") if key not in data]
    images = data.get("images")
    if "images" in data and not isinstance(images, dict):
        problems.append("images: expected an object of service -> repo@sha256:<digest>")
    elif isinstance(images, dict):
        problems += [f"images.{name}: {ref!r} is not pinned by digest (repo@sha256:<64 hex>)"
                     for name, ref in images.items() if not isinstance(ref, str) or not PINNED.match(ref)]
    if problems:
        raise OpsError(f"{path}: invalid build manifest: " + "; ".join(problems))
    return Manifest(str(data["git_sha"]), str(data["created_at"]), dict(images or {}))


def write(path: Path, manifest: Manifest) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n")


def digest_of(ref: str) -> str:
    """`repo@sha256:abc` -> `sha256:abc`."""
    return ref.rpartition("@")[2]


def repository_of(ref: str) -> str:
    return ref.rpartition("@")[0]
