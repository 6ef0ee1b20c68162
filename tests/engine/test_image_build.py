"""`invoke build --push` for real: services/products built by buildx, pushed to a local registry.

The digest buildx reports must be the one the registry serves; a second build of the same commit
must succeed with the same digest (tags are immutable in ECR); promotion copies by digest.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from ops.delivery.docker_adapter import Docker
from ops.errors import OpsError
from tests.engine.conftest import REGISTRY, Built, build_products, manifest_json, registry_digest, unique

pytestmark = pytest.mark.engine


def test_pushed_digest_is_the_registry_digest(built: Built) -> None:
    assert built.digest.startswith("sha256:") and len(built.digest) == 71
    assert registry_digest(built.repository, built.tag) == built.digest
    assert registry_digest(built.repository, built.digest) == built.digest


def test_building_the_same_commit_again_succeeds_with_the_same_digest(built: Built) -> None:
    again = build_products(built.repository)
    assert again == built.digest
    assert registry_digest(built.repository, built.tag) == built.digest


def test_labels_name_the_commit_and_its_time_not_the_build_time(engine: Any, built: Built) -> None:
    image = engine.images.pull(built.repository, tag=built.tag)
    labels = image.labels
    assert labels["org.opencontainers.image.revision"] == built.git_sha
    assert labels["org.opencontainers.image.created"] == "2026-11-27T18:30:00Z"
    assert labels["org.opencontainers.image.source"] == "https://github.com/acme/refarch"
    assert labels["org.opencontainers.image.base.name"] == "local/python:3.11-bookworm"


def test_promotion_copies_an_index_by_digest_into_another_repository(built: Built) -> None:
    # What a docker-container builder pushes (SBOM + provenance): an image index. The local
    # `docker`-driver engine pushes a lone manifest, so the index is made here from it.
    subprocess.run(["docker", "buildx", "imagetools", "create", "--tag", f"{built.repository}:{built.tag}-index",
                    built.ref], check=True, capture_output=True)
    index = registry_digest(built.repository, f"{built.tag}-index")
    assert index and index != built.digest
    target = f"{REGISTRY}/{unique('refarch-prod')}/products"
    tag = f"dev-20261127T183000Z-{built.git_sha[:7]}"
    Docker().copy(f"{built.repository}@{index}", f"{target}:{tag}")
    assert registry_digest(target, tag) == index
    assert manifest_json(target, index) == manifest_json(built.repository, index)


def test_a_lone_manifest_is_refused_before_anything_is_pushed(built: Built) -> None:
    target = f"{REGISTRY}/{unique('refarch-prod')}/products"
    with pytest.raises(OpsError, match="is a single manifest .*not an image index: copying it would change"):
        Docker().copy(built.ref, f"{target}:x")
    assert registry_digest(target, "x") is None


def test_build_without_push_loads_a_local_image_and_has_no_digest(engine: Any, built: Built, capsys) -> None:
    repository = f"{REGISTRY}/{unique('refarch-local')}/products"
    assert build_products(repository, push=False) is None
    local = engine.images.get(f"{repository}:{built.git_sha}")
    assert local.labels["org.opencontainers.image.revision"] == built.git_sha
    assert registry_digest(repository, built.git_sha) is None  # nothing went to the registry
    engine.images.remove(f"{repository}:{built.git_sha}")  # the tag only: the image is shared
