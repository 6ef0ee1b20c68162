"""Preflight: every image a release pins must already exist in ECR, checked by digest.

Catching a missing digest before `up` matters: ECS would otherwise start a rollout whose tasks
can never pull their image, and only the verification timeout would tell.
"""

from __future__ import annotations

import re
from typing import Any

from ops.delivery.aws import Clients, error_code, translate_errors

# <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/<repository>@sha256:<64 hex>
_ECR_REF = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<repository>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$"
)
_NOT_THERE = {"ImageNotFoundException", "RepositoryNotFoundException"}


def missing_digests(clients: Clients, images: dict[str, str]) -> list[str]:
    """`service: ref` for each image not found in ECR (or not an ECR image pinned by digest)."""
    missing: list[str] = []
    ecr_by_region: dict[str, Any] = {}
    for service, ref in sorted(images.items()):
        match = _ECR_REF.match(ref)
        if match is None:
            why = "not pinned by digest" if "@sha256:" not in ref else "not an ECR image: cannot be checked"
            missing.append(f"{service}: {ref} ({why})")
            continue
        region = match["region"]
        if region not in ecr_by_region:
            # An image pinned from another region's ECR is checked there, not in the stack's region.
            ecr_by_region[region] = clients.ecr if region == clients.region else clients.client("ecr", region)
        if not _exists(ecr_by_region[region], match["registry"], match["repository"], match["digest"]):
            missing.append(f"{service}: {ref}")
    return missing


def _exists(ecr: Any, registry: str, repository: str, digest: str) -> bool:
    with translate_errors(f"checking {repository}@{digest[:19]}... in ECR"):
        try:
            found = ecr.describe_images(registryId=registry, repositoryName=repository,
                                        imageIds=[{"imageDigest": digest}])
        except Exception as exc:
            if error_code(exc) in _NOT_THERE:
                return False
            raise
    return any(detail.get("imageDigest") == digest for detail in found.get("imageDetails", []))
