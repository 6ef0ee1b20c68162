"""Parsing a stack's raw config into the typed model, and explaining every problem with its key path."""

from __future__ import annotations

from pydantic import BaseModel

from infra.config.base import ENVIRONMENTS, PROJECT
from infra.config.stack import CrossFieldError, StackConfig


class ConfigError(Exception):
    """Every problem of one stack's config, one `<source>: <key path>: <what is wrong>` line each."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def parse(values: dict[str, object], stack: str, source: str) -> StackConfig:
    """Validate a stack's config (`<namespace>:<key>` -> value, as Pulumi holds it).

    Values may be JSON strings (how the Pulumi runtime passes structured config) or already
    decoded (how a stack file reads). Raises ConfigError naming every wrong field.
    """
    data: dict[str, object] = {}
    for key, value in values.items():
        namespace, _, name = key.partition(":")
        if key == "aws:region":
            data["region"] = _decode(value)
        elif namespace == PROJECT:
            data[name] = _decode(value)
    if "environment" not in data and stack in ENVIRONMENTS:
        data["environment"] = stack
    try:
        return StackConfig.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError; imported lazily by pydantic itself
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        raise ConfigError([f"{source}: {line}" for line in _explain(exc)]) from None


def _decode(value: object) -> object:
    import json

    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _explain(exc) -> list[str]:
    lines: list[str] = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, CrossFieldError):
            lines.extend(f"{PROJECT}:{problem}" for problem in cause.problems)
            continue
        loc = err["loc"]
        path = _key_path(loc)
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + _suggest(loc)
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if "input" in err and err["type"] not in ("value_error",) and not isinstance(err["input"], (dict, list)):
                msg += f" (got {err['input']!r})"
        lines.append(f"{path}: {msg}")
    return lines


def _key_path(loc: tuple) -> str:
    if not loc:
        return f"{PROJECT}"
    head, *rest = loc
    if head == "region":
        path = "aws:region"
    else:
        path = f"{PROJECT}:{head}"
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _suggest(loc: tuple) -> str:
    import difflib

    model: type[BaseModel] | None = StackConfig
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_of(field.annotation) if field else None
    if model is None:
        return ""
    known = list(model.model_fields)
    match = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f" (did you mean {match[0]!r}?)" if match else f" (known keys: {', '.join(known)})"


def _model_of(annotation) -> type[BaseModel] | None:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found:
            return found
    return None
