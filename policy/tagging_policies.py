"""Tags: every taggable AWS resource carries the cost and ownership tags."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from policy_support import (
    MANDATORY,
    Policy,
    get,
    label_of,
    report_all,
    tags_of,
)
from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.proxy import UnknownValueError

REQUIRED_TAGS = ("project", "stack", "environment", "managed-by")


@cache
def taggable(type_token: str) -> bool:
    """Whether the SDK class behind a type token has a `tags` property.

    The same rule as `ops.mocks.has_property(token, "tags")`, repeated here because the pack runs
    in its own virtualenv without the repository's packages.
    """
    import importlib
    import keyword

    package, _, rest = type_token.partition(":")
    module, _, name = rest.partition(":")
    sub = module.split("/")[0]
    # Python keywords get a trailing underscore in the SDK (`lambda` -> `pulumi_aws.lambda_`).
    sub = f"{sub}_" if keyword.iskeyword(sub) else sub
    path = f"pulumi_{package}" + ("" if sub == "index" else f".{sub}")
    try:
        with warnings.catch_warnings():
            # Importing an SDK module announces every deprecated class in it: not our concern here.
            warnings.simplefilter("ignore", DeprecationWarning)
            cls = getattr(importlib.import_module(path), name, None)
    except ImportError:
        return False
    return cls is not None and isinstance(getattr(cls, "tags", None), property)


def _required_tags(args: ResourceValidationArgs) -> Iterator[str]:
    if not args.resource_type.startswith("aws:") or not taggable(args.resource_type):
        return
    # Tags the provider adds to everything (default_tags) count as the resource's own.
    defaults = get(args.provider.props, "defaultTags", "tags") if args.provider is not None else None
    sources: list[Mapping[str, Any]] = [tags_of(args.props)]
    if isinstance(defaults, Mapping):
        sources.append(defaults)
    present = {key for tags in sources for key in tags if _has_value(tags, key)}
    missing = [tag for tag in REQUIRED_TAGS if tag not in present]
    if missing:
        yield (f"{label_of(args)} lacks the tags {', '.join(missing)}. "
               "Pass tags=infra.tags.base_tags(...) (plus Name) to the resource.")


def _has_value(tags: Mapping[str, Any], key: str) -> bool:
    try:
        value = tags[key]
    except UnknownValueError:
        return True  # computed at preview: present, value to be known at update
    return isinstance(value, str) and bool(value.strip())


POLICIES: list[Policy] = [
    # Tags apply to every taggable type: the type filter is `taggable`, not a list.
    ResourceValidationPolicy(
        name="required-tags",
        description=f"Every taggable AWS resource carries {', '.join(REQUIRED_TAGS)}.",
        enforcement_level=MANDATORY,
        validate=lambda args, report: report_all(_required_tags(args), report),
    ),
]
