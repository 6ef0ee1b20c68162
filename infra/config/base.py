"""Constants of the platform and the strict base every config model shares."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

PROJECT = "refarch"
ENVIRONMENTS = ("dev", "staging", "prod")

# Fargate accepts only these cpu -> memory (MiB) combinations.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)

# Tiers carved from the VPC CIDR: public, private (app), isolated (data); one subnet per AZ each.
SUBNET_TIERS = 3
SUBNET_NEWBITS = 4  # 16 equal slots: enough for 3 tiers x 5 AZs
MAX_AZS = 5

# The one mutable tag of a service's repository: the registry build cache every build overwrites.
BUILD_CACHE_TAG = "buildcache"

# Environment names the platform injects itself; a service may not override them.
RESERVED_ENV = re.compile(r"^(DATABASE_|CACHE_|OTEL_|AWS_|ECS_)")
SECRET_LOOKING = re.compile(r"(PASSWORD|SECRET|TOKEN|PRIVATE_KEY|API_KEY)$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
