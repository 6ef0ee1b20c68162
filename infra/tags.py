"""The tags every taggable resource carries, so cost and ownership reports can group by them."""

from __future__ import annotations

from typing import Any


def base_tags(project: str, stack: str, environment: str) -> dict[str, str]:
    return {
        "project": project,
        "stack": stack,
        "environment": environment,
        "managed-by": "pulumi",
    }


def with_name(tags: dict[str, str], name: Any) -> dict[str, Any]:
    """The standard tags plus `Name` (a plain string, or an Output where the name is computed)."""
    return {**tags, "Name": name}
