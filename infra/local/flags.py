"""The local target's feature flags: one JSON file, bind-mounted read-only into each service.

It holds what the AppConfig agent answers on ECS (`{"<flag>": {"enabled": ..., <attributes>}}`)
and the service reads it through the same FLAGS_URL code path (a `file://` URL instead of the
agent's `http://localhost:2772/...`), so the flag code runs unchanged on a laptop. The file is
written before `invoke up` from the stack's declared flags; a value edited in it by hand is kept
across `up` (and read by the running service within its TTL), a flag no longer declared is dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

from infra.config.flags import FlagsConfig, values

MOUNT = "/run/flags/flags.json"
URL = f"file://{MOUNT}"


def host_file(root: Path, stack: str) -> Path:
    return root / ".local" / "flags" / f"{stack}.json"


def ensure(path: Path, config: FlagsConfig) -> bool:
    """Write the declared flags' values (keeping hand-edited `enabled` values); True if it changed."""
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        current = {}
    kept = current if isinstance(current, dict) else {}
    wanted = {}
    for flag in config.declared:
        old = kept.get(flag.name)
        enabled = old["enabled"] if isinstance(old, dict) and isinstance(old.get("enabled"), bool) else flag.default
        wanted[flag.name] = values(enabled, flag.attributes)
    text = json.dumps(wanted, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o644)  # the service reads it as its own non-root user through the bind mount
    return True
