"""The build manifest: round trip and a clear error for each way it can be wrong."""

from __future__ import annotations

import json

import pytest

from ops.delivery import manifest
from ops.errors import OpsError

REF = "123456789012.dkr.ecr.us-east-1.amazonaws.com/refarch-dev/products@sha256:" + "1" * 64


def test_round_trip(tmp_path):
    path = tmp_path / "out" / "manifest.json"
    written = manifest.Manifest("a" * 40, "2026-11-27T18:30:00Z", {"products": REF})
    manifest.write(path, written)
    assert manifest.read(path) == written
    assert json.loads(path.read_text()) == {"git_sha": "a" * 40, "created_at": "2026-11-27T18:30:00Z",
                                            "images": {"products": REF}}


@pytest.mark.parametrize("content, message", [
    (None, "no build manifest at .*invoke build --push"),
    ("{not json", "not valid JSON"),
    ('{"git_sha": "a"}', "created_at: missing; images: missing"),
    ('{"git_sha": "a", "created_at": "t", "images": {"products": "repo:latest"}}',
     "images.products: 'repo:latest' is not pinned by digest"),
])
def test_invalid_manifests(tmp_path, content, message):
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(OpsError, match=message):
        manifest.read(path)
