"""What AWS sells, as static tables the schema checks values against (offline: no AWS call).

Sources, as of 2025-11: the RDS for PostgreSQL release calendar and DB instance class support
tables, the ElastiCache supported engine versions and node types pages, and the EC2 instance type
list (Graviton families for the arm64 NAT AMI). A value AWS added later is refused until added here:
a refusal that names the table is cheaper than a deploy that fails halfway.
"""

from __future__ import annotations

# PostgreSQL majors RDS still creates (standard support); 11 and 12 are extended-support only.
POSTGRES_MAJORS = ("13", "14", "15", "16", "17")


def postgres_family(major: str) -> str:
    """The DB parameter group family of a PostgreSQL major."""
    return f"postgres{major}"


# ElastiCache engine versions (major.minor). Redis OSS stops at 7.1; Valkey continues it.
CACHE_VERSIONS: dict[str, tuple[str, ...]] = {
    "redis": ("4.0", "5.0", "6.0", "6.2", "7.0", "7.1"),
    "valkey": ("7.2", "8.0", "8.1"),
}

_SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge")
_BURST = ("micro", "small", "medium", "large", "xlarge", "2xlarge")

# RDS for PostgreSQL instance classes: family -> sizes.
RDS_POSTGRES_CLASSES: dict[str, tuple[str, ...]] = {
    "db.t3": _BURST, "db.t4g": _BURST,
    "db.m5": _SIZES, "db.m6g": _SIZES[:7], "db.m6i": (*_SIZES, "32xlarge"), "db.m7g": _SIZES[:7],
    "db.r5": _SIZES, "db.r6g": _SIZES[:7], "db.r6i": (*_SIZES, "32xlarge"), "db.r7g": _SIZES[:7],
}

# ElastiCache node types: family -> sizes.
CACHE_NODE_TYPES: dict[str, tuple[str, ...]] = {
    "cache.t3": ("micro", "small", "medium"), "cache.t4g": ("micro", "small", "medium"),
    "cache.m5": ("large", "xlarge", "2xlarge", "4xlarge", "12xlarge", "24xlarge"),
    "cache.m6g": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
    "cache.m7g": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
    "cache.r6g": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
    "cache.r7g": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
}

# Graviton (arm64) EC2 families for the NAT instance's Amazon Linux 2023 arm64 AMI.
ARM64_INSTANCE_TYPES: dict[str, tuple[str, ...]] = {
    "t4g": ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"),
    "c6g": ("medium", "large", "xlarge", "2xlarge", "4xlarge"), "c7g": ("medium", "large", "xlarge", "2xlarge"),
    "c6gn": ("medium", "large", "xlarge", "2xlarge", "4xlarge"),
    "m6g": ("medium", "large", "xlarge", "2xlarge"), "m7g": ("medium", "large", "xlarge", "2xlarge"),
}
# x86 families, only to tell someone who wrote one why it is refused.
X86_FAMILIES = ("t2", "t3", "t3a", "c5", "c6i", "c7i", "m5", "m6i", "m7i", "r5", "r6i")


def in_table(value: str, table: dict[str, tuple[str, ...]]) -> bool:
    family, _, size = value.rpartition(".")
    return size in table.get(family, ())


def families(table: dict[str, tuple[str, ...]]) -> str:
    return ", ".join(table)


# Names PostgreSQL or RDS keep for themselves: a database or role by these names fails at create.
RESERVED_DB_NAMES = ("template0", "template1", "rdsadmin")
RESERVED_DB_USERS = ("rdsadmin", "rdsrepladmin", "public", "current_user", "session_user", "current_role", "none")
# PostgreSQL reserves role names starting pg_, RDS its own rds_ roles (rds_superuser, rds_iam, ...).
RESERVED_ROLE_PREFIXES = ("pg_", "rds_")
# SQL key words PostgreSQL reserves (a subset: the ones that look like names).
SQL_RESERVED = ("all", "analyse", "analyze", "and", "any", "as", "case", "check", "column", "create", "default",
                "desc", "do", "end", "for", "from", "grant", "group", "limit", "not", "null", "order", "select",
                "table", "to", "union", "user", "where", "with")
