"""Reads `stacks/Pulumi.<stack>.yaml` into the typed config; every problem listed, nothing run."""

from __future__ import annotations

from pathlib import Path

from infra.config import ConfigError, StackConfig, parse
from infra.config.yamlfile import YamlError, decode
from infra.config.yamlfile import load as load_yaml

ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = ROOT / "stacks"
# What a Pulumi stack settings file holds at its top level (a typo there would drop the whole config).
STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment")


def stack_path(stack: str) -> Path:
    return STACKS_DIR / f"Pulumi.{stack}.yaml"


def known_stacks() -> list[str]:
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in STACKS_DIR.glob("Pulumi.*.yaml"))


def read_values(stack: str, path: Path | None = None) -> dict[str, object]:
    """The raw `config:` map of a stack file (namespaced keys, decoded YAML values)."""
    path = path or stack_path(stack)
    source = _display(path)
    if not path.is_file():
        known = ", ".join(known_stacks()) or "none"
        raise ConfigError([f"{source}: no such stack file (known stacks: {known})"])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read the stack file ({exc.strerror or exc})"]) from None
    try:
        document = load_yaml(decode(raw, source), source) or {}
    except YamlError as exc:
        raise ConfigError(exc.lines) from None
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise ConfigError([f"{source}: config: expected a mapping of `<namespace>:<key>: value`"])
    unknown = [key for key in document if key not in STACK_FILE_KEYS]
    if unknown:
        import difflib

        raise ConfigError([f"{source}: {key}: not a stack file key"
                           + (f" (did you mean {match[0]!r}?)" if (match := difflib.get_close_matches(
                               str(key), STACK_FILE_KEYS, n=1)) else f" (known: {', '.join(STACK_FILE_KEYS)})")
                           for key in unknown])
    return dict(document.get("config") or {})


def load(stack: str, path: Path | None = None) -> StackConfig:
    path = path or stack_path(stack)
    return parse(read_values(stack, path), stack, _display(path))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
