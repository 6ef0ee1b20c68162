"""`refarch:flags`: the stack's feature flags (AWS AppConfig) and how a flag change rolls out.

Each declared flag becomes one flag of the stack's `AWS.AppConfig.FeatureFlags` configuration
profile, with its default as the first deployed value. The rules below are AppConfig's own (the
type reference of AWS.AppConfig.FeatureFlags and the AttributeValue API type), checked here so a
typo fails `invoke preview` with its key path instead of a rejected hosted configuration version
in the middle of `pulumi up`.

A flag change is an AppConfig deployment, rolled out by the `rollout` strategy and rolled back by
AppConfig itself when one of the services' health alarms fires during it. The defaults are
production's (gradual, baked); dev opts out with `growth: immediate`.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, field_validator, model_validator

from infra.config.base import Strict

# AppConfig's pattern for flag keys and attribute keys (type reference, patternProperties).
FLAG_KEY = re.compile(r"^[a-z][a-zA-Z\d_-]{0,63}$")
ATTRIBUTES_MAX = 25  # maxProperties of attributeDefinitions
ARRAY_MAX = 25  # AttributeValue: StringArray / NumberArray hold at most 25 members
STRING_MAX = 1024  # AttributeValue: StringValue, and each StringArray member
FLAGS_MAX = 100  # maxProperties of flagDefinitions
DESCRIPTION_MAX = 1024  # customerDefinedDescription
RESERVED_ATTRIBUTE = "enabled"  # the flag's own on/off value lives under this key
STRATEGY_MINUTES_MAX = 1440  # DeploymentStrategy: duration and final bake, 0..1440


def attribute_type(value: Any) -> str | None:
    """The AppConfig attribute type a declared value has, or None if AppConfig has no such type."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number" if math.isfinite(value) else None
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "string[]"
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
            return "number[]"
    return None


def _attribute_problem(key: str, value: Any) -> str | None:
    if key == RESERVED_ATTRIBUTE:
        return f"{key!r} is reserved by AppConfig for the flag's own value: choose another attribute name"
    if not FLAG_KEY.match(key):
        return (f"{key!r} is not an AppConfig attribute name: a lowercase letter, then up to 63 letters, "
                f"digits, '_' or '-'")
    kind = attribute_type(value)
    if kind is None:
        return (f"{value!r} is not a value AppConfig accepts for an attribute: use a string, a number, a "
                f"boolean, a list of strings or a list of numbers")
    if kind.endswith("[]") and len(value) > ARRAY_MAX:
        return f"{len(value)} items: an AppConfig attribute array holds at most {ARRAY_MAX}"
    strings = [value] if kind == "string" else value if kind == "string[]" else []
    long = [s for s in strings if len(s) > STRING_MAX]
    if long:
        return f"a string of {len(long[0])} characters: AppConfig attribute strings hold at most {STRING_MAX}"
    return None


class Flag(Strict):
    name: str
    description: Annotated[str, Field(max_length=DESCRIPTION_MAX)] = ""
    default: StrictBool = False
    # Typed values passed to the service with the flag (only while it is on, as AppConfig does).
    attributes: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not FLAG_KEY.match(value):
            raise ValueError(f"{value!r} is not an AppConfig flag key: a lowercase letter, then up to 63 "
                             f"letters, digits, '_' or '-'")
        return value


class FlagRollout(Strict):
    """How AppConfig rolls a flag change out (one DeploymentStrategy per stack)."""

    # immediate: every target at once, no bake (dev); linear/exponential: AppConfig's growth types.
    growth: Literal["immediate", "linear", "exponential"] = "linear"
    growth_factor: Annotated[float, Field(ge=1, le=100)] = 20.0  # percent of targets per step
    duration_minutes: Annotated[int, Field(ge=0, le=STRATEGY_MINUTES_MAX)] = 10
    # After the last step the alarms are watched this long; an alarm then still rolls back.
    bake_minutes: Annotated[int, Field(ge=0, le=STRATEGY_MINUTES_MAX)] = 10

    @model_validator(mode="after")
    def _consistent(self) -> FlagRollout:
        if self.growth == "immediate":
            stray = sorted(n for n in ("growth_factor", "duration_minutes", "bake_minutes")
                           if getattr(self, n) != type(self).model_fields[n].default)
            if stray:
                raise ValueError(f"{', '.join(stray)} does not apply to growth immediate (0 minutes, 100 %, no bake)")
        elif self.duration_minutes == 0:
            raise ValueError(f"duration_minutes 0 makes growth {self.growth} immediate: say `growth: immediate` "
                             f"or give the rollout some minutes")
        return self

    def strategy(self) -> dict[str, Any]:
        """The DeploymentStrategy numbers (pulumi_aws argument names)."""
        if self.growth == "immediate":
            return {"deployment_duration_in_minutes": 0, "growth_factor": 100.0,
                    "final_bake_time_in_minutes": 0, "growth_type": "LINEAR"}
        return {"deployment_duration_in_minutes": self.duration_minutes, "growth_factor": self.growth_factor,
                "final_bake_time_in_minutes": self.bake_minutes, "growth_type": self.growth.upper()}


class FlagsConfig(Strict):
    declared: list[Flag] = []
    rollout: FlagRollout = FlagRollout()

    @model_validator(mode="after")
    def _flags(self) -> FlagsConfig:
        problems: list[str] = []
        seen: dict[str, int] = {}
        if len(self.declared) > FLAGS_MAX:
            problems.append(f"flags.declared: {len(self.declared)} flags, an AppConfig feature-flag profile "
                            f"holds at most {FLAGS_MAX}")
        for i, flag in enumerate(self.declared):
            if flag.name in seen:
                problems.append(f"flags.declared[{i}].name: {flag.name!r} is already used by flags.declared[{seen[flag.name]}]")
            seen.setdefault(flag.name, i)
            if len(flag.attributes) > ATTRIBUTES_MAX:
                problems.append(f"flags.declared[{i}].attributes: {len(flag.attributes)} attributes, an AppConfig "
                                f"flag holds at most {ATTRIBUTES_MAX}")
            for key, value in flag.attributes.items():
                problem = _attribute_problem(str(key), value)
                if problem:
                    problems.append(f"flags.declared[{i}].attributes.{key}: {problem}")
        if problems:
            # Imported here: stack.py imports this module, and the error lines are the stack's own.
            from infra.config.stack import CrossFieldError

            raise CrossFieldError(problems)
        return self

    def get(self, name: str) -> Flag:
        return next(flag for flag in self.declared if flag.name == name)

    def content(self) -> dict[str, Any]:
        """The hosted configuration in AppConfig's feature-flags format (version "1"), defaults as values."""
        return {
            "version": "1",
            "flags": {f.name: {"name": f.name, **({"description": f.description} if f.description else {}),
                               **({"attributes": {k: {"constraints": _constraint(v)} for k, v in f.attributes.items()}}
                                  if f.attributes else {})}
                      for f in self.declared},
            "values": {f.name: values(f.default, f.attributes) for f in self.declared},
        }


def values(enabled: bool, attributes: dict[str, Any]) -> dict[str, Any]:
    """One flag's entry under `values`: `enabled` and its attribute values."""
    return {"enabled": enabled, **attributes}


def _constraint(value: Any) -> dict[str, Any]:
    kind = attribute_type(value)
    if kind and kind.endswith("[]"):
        return {"type": "array", "elements": {"type": kind.removesuffix("[]")}}
    return {"type": kind}
