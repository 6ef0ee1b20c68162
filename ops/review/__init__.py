"""The review report for a change: cost estimate, architecture diagram, change summary (issue 5).

Everything here reads the synth JSON (`ops.synth.Synth.to_json()`, or a file `invoke synth --out`
wrote), so a review works offline, without credentials, for forks and local runs alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ops.errors import OpsError

SynthJson = dict[str, Any]


def load_synth(stack: str, synth_file: str | None = None) -> SynthJson:
    """The synth JSON of `stack`: read from `synth_file` when given, else synthesized now."""
    if synth_file is None:
        from ops.synth import synth_stack

        return synth_stack(stack, reclaim=False).to_json()  # a task's one synth: the process exits soon
    document = read_synth_file(synth_file)
    if document.get("stack") not in (None, stack):
        raise OpsError(f"{synth_file}: synth output of stack {document['stack']!r}, not {stack!r}")
    return document


def load_base(stack: str, path: str) -> SynthJson:
    """The base branch's synth output of the same stack (another stack's URNs would all differ)."""
    document = read_synth_file(path)
    if document.get("stack") not in (None, stack):
        raise OpsError(f"{path}: base synth output is of stack {document['stack']!r}; compare {stack!r} with its own base")
    return document


def read_synth_file(path: str) -> SynthJson:
    """A synth output written by `invoke synth --out`, checked for the shape every reader relies on."""
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise OpsError(f"{path}: no such synth file (write one with `invoke synth --stack S --out {path}`)") from None
    except IsADirectoryError:
        raise OpsError(f"{path}: is a directory, not a synth file") from None
    except OSError as exc:
        raise OpsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise OpsError(f"{path}: not UTF-8 text, not a synth output") from None
    except ValueError as exc:
        raise OpsError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise OpsError(f"{path}: not a synth output (expected an object with a `resources` list)")
    for i, resource in enumerate(document["resources"]):
        if not isinstance(resource, dict):
            raise OpsError(f"{path}: resources[{i}]: expected an object, got {type(resource).__name__}")
        for key, kind in SYNTH_FIELDS.items():
            if not isinstance(resource.get(key), kind):
                raise OpsError(f"{path}: resources[{i}].{key}: expected {kind.__name__}, "
                               f"got {type(resource.get(key)).__name__}")
        if not isinstance(resource.get("parent"), (str, type(None))):
            raise OpsError(f"{path}: resources[{i}].parent: expected a URN or null")
    if not isinstance(document.get("outputs", {}), dict):
        raise OpsError(f"{path}: outputs: expected an object")
    return document


# What every resource of a synth output carries (ops/synth.py `_record`).
SYNTH_FIELDS: dict[str, type] = {"urn": str, "type": str, "name": str, "inputs": dict}


def read_stack_synth(path: str, stack: str) -> SynthJson:
    """A synth file that must be `stack`'s, and not empty."""
    document = read_synth_file(path)
    if document.get("stack") != stack:
        raise OpsError(f"{path}: synth output of stack {document.get('stack')!r}, not {stack!r}")
    if not any(not is_component(r) for r in document["resources"]):
        raise OpsError(f"{path}: an empty resource graph: nothing to check (was the synth interrupted?)")
    return document


def layers(document: SynthJson) -> dict[str, str]:
    """URN -> architecture layer, by `ops.synth.layers_of` (the outermost `refarch:<layer>:*` ancestor)."""
    from ops.synth import Synth, layers_of

    synth = Synth(project=document.get("project", ""), stack=document.get("stack", ""),
                  resources=document["resources"], outputs=document.get("outputs", {}))
    return layers_of(synth)


def is_component(resource: dict[str, Any]) -> bool:
    """Component resources (`refarch:<layer>:*`) group others; they are never cloud resources."""
    from infra.config import PROJECT

    return resource["type"].startswith((f"{PROJECT}:", "pulumi:"))


class Index:
    """Looks resources up by the ids and ARNs other resources' inputs carry."""

    def __init__(self, document: SynthJson):
        self.resources: list[dict[str, Any]] = [r for r in document["resources"] if not is_component(r)]
        self.by_ref: dict[str, dict[str, Any]] = {}
        for r in self.resources:
            for ref in (r.get("id"), r.get("arn")):
                if isinstance(ref, str) and ref:
                    self.by_ref.setdefault(ref, r)

    def get(self, ref: Any) -> dict[str, Any] | None:
        return self.by_ref.get(ref) if isinstance(ref, str) else None

    def of_type(self, *tokens: str) -> Iterator[dict[str, Any]]:
        return (r for r in self.resources if r["type"] in tokens)
