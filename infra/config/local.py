"""`refarch:target` and `refarch:local`: what a stack renders to, and the laptop target's own settings.

The local target reads every other section exactly as the AWS one does (services, routes, health
checks, database and cache versions); this section holds only what AWS has no counterpart for.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from infra.config.base import Strict

Target = Literal["aws", "local"]

# `name[:tag][@sha256:<64 hex>]`, as the Docker engine accepts it.
IMAGE_REF = re.compile(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*(?::\d+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
                       r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# An image the engine built itself (`invoke build --stack local`): its id, nothing to pull.
IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


def render(ref: str, *, major: str, version: str) -> str:
    """An image reference with the data tier's versions filled in (`{major}`, `{version}`)."""
    return ref.replace("{major}", major).replace("{version}", version)


def _image(value: str) -> str:
    if not IMAGE_REF.match(value):
        raise ValueError(f"{value!r} is not an image reference (name[:tag][@sha256:<digest>])")
    return value


class LocalImages(Strict):
    """The images of the platform's own containers. Tags here; `invoke local-pin` (run where the
    registries are reachable) replaces each by its digest, and `pinned: true` then refuses any left."""

    database: str = "postgres:{major}-bookworm"
    cache: str = "valkey/valkey:{version}-bookworm"
    gateway: str = "haproxy:3.2-bookworm"
    collector: str = "otel/opentelemetry-collector-contrib:0.115.1"
    telemetry_ui: str = "jaegertracing/all-in-one:1.64.0"

    @field_validator("*")
    @classmethod
    def _refs(cls, value: str) -> str:
        # Checked as it will render; kept as written, so `image()` fills in the stack's own versions.
        _image(render(value, major="16", version="8.0"))
        return value


class LocalConfig(Strict):
    # The gateway and the telemetry UI are published on 127.0.0.1 only: never on another interface.
    gateway_port: Annotated[int, Field(ge=1024, le=65535)] = 8080
    telemetry: bool = True
    telemetry_ui_port: Annotated[int, Field(ge=1024, le=65535)] = 16686
    # Where the local secrets live (files, mode 0600, written by `invoke up` when missing); relative to
    # the repository. Containers read them from bind mounts, so no value ever enters the Pulumi state.
    secrets_dir: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_./-]*$", max_length=200)] = ".local/secrets"
    images: LocalImages = LocalImages()
    # Refuse images that are not pinned by digest (set once `invoke local-pin` has pinned them).
    pinned: bool = False

    @field_validator("secrets_dir")
    @classmethod
    def _inside_repo(cls, value: str) -> str:
        if ".." in value.split("/"):
            raise ValueError(f"{value!r} must stay inside the repository (no '..')")
        return value

    def problems(self) -> list[str]:
        out = []
        if self.gateway_port == self.telemetry_ui_port and self.telemetry:
            out.append(f"local.telemetry_ui_port: {self.telemetry_ui_port} is already the gateway_port")
        if self.pinned:
            for name, ref in self.images.model_dump().items():
                if not DIGEST.search(ref):
                    out.append(f"local.images.{name}: {ref!r} is not pinned by digest (pinned: true)")
        return out

    def image(self, name: str, *, major: str = "", version: str = "") -> str:
        return render(getattr(self.images, name), major=major, version=version)
