"""ECR preflight against a real moto server: digests that exist pass, every other one is named."""

from __future__ import annotations

from ops.delivery.images import missing_digests

ABSENT = "sha256:" + "0" * 64


def test_present_digest_passes_and_absent_one_is_named(deployed_stack, clients):
    present = deployed_stack.images["products"]
    repo = present.split("@")[0]
    absent = f"{repo}@{ABSENT}"

    assert missing_digests(clients, {"products": present}) == []
    assert missing_digests(clients, {"products": present, "orders": absent}) == [f"orders: {absent}"]


def test_unknown_repository_and_unpinned_or_foreign_images_are_missing(deployed_stack, clients):
    registry = deployed_stack.images["products"].split("/")[0]
    images = {
        "a": f"{registry}/no-such-repo@{ABSENT}",
        "b": f"{registry}/refarch-test-products:latest",
        "c": f"docker.io/library/nginx@{ABSENT}",
    }
    assert missing_digests(clients, images) == [
        f"a: {images['a']}",
        f"b: {images['b']} (not pinned by digest)",
        f"c: {images['c']} (not an ECR image: cannot be checked)",
    ]
