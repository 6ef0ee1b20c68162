"""Parsing a stack's raw config into the typed model, and explaining every problem with its key path."""

from __future__ import annotations

import re

from pydantic import BaseModel

from infra.config.base import ENVIRONMENTS, PROJECT
from infra.config.naming import stack_name_problems
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
    problems: list[str] = []
    for key, value in values.items():
        namespace, colon, name = str(key).partition(":")
        if not colon:
            problems.append(f"{key}: not a `<namespace>:<key>` key (did you mean '{PROJECT}:{key}'?)")
        elif namespace == PROJECT:
            data[name] = _decode(value)
        elif namespace == "aws":
            problem = _aws_setting(name, _decode(value))
            if problem:
                problems.append(f"{key}: {problem}")
            elif name == "region":
                data["region"] = _decode(value)
        else:
            problems.append(f"{key}: unknown namespace {namespace!r}{_suggest_namespace(namespace, name)}")
    if "environment" not in data and stack in ENVIRONMENTS:
        data["environment"] = stack
    problems += stack_name_problems(stack, data.get("region"), data.get("services"))
    try:
        config = StackConfig.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError; imported lazily by pydantic itself
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        problems += _explain(exc)
    if problems:
        raise ConfigError([f"{source}: {line}" for line in problems])
    return config


# The `aws:` provider settings this program honours; any other is a typo or an unsupported setting.
AWS_SETTINGS = ("region", "profile", "allowedAccountIds")


def _aws_setting(name: str, value: object) -> str | None:
    import difflib

    if name not in AWS_SETTINGS:
        match = difflib.get_close_matches(name, AWS_SETTINGS, n=1)
        hint = f"did you mean 'aws:{match[0]}'?" if match else f"supported: {', '.join('aws:' + s for s in AWS_SETTINGS)}"
        return f"unknown or unsupported aws provider setting ({hint})"
    if name == "profile" and not (isinstance(value, str) and value):
        return f"expected a profile name (got {value!r})"
    if name == "allowedAccountIds" and not (
            isinstance(value, list) and value and all(isinstance(v, str) and re.fullmatch(r"\d{12}", v) for v in value)):
        return f"expected a list of 12-digit account ids as strings (got {value!r})"
    return None


def _suggest_namespace(namespace: str, name: str) -> str:
    import difflib

    known = (PROJECT, "aws")
    match = [k for k in known if k == namespace.lower()] or difflib.get_close_matches(namespace.lower(), known, n=1)
    if match:
        return f" (did you mean '{match[0]}:{name}'?)"
    return f" (known namespaces: {', '.join(known)})"


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
            lines.extend(problem if problem.startswith("aws:") else f"{PROJECT}:{problem}" for problem in cause.problems)
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
