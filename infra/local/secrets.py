"""Local secrets: files under the stack's `local.secrets_dir`, bind-mounted read-only into containers.

Only paths reach the Pulumi program and its state; the values are read by the containers themselves
(PostgreSQL's `POSTGRES_PASSWORD_FILE`, the service's `*_FILE` variables, Valkey's ACL file).
"""

from __future__ import annotations

import secrets as token_source
from dataclasses import dataclass
from pathlib import Path

# Where the files appear inside every container that needs one.
MOUNT = "/run/secrets"
DATABASE_MASTER = "database-master-password"
DATABASE_APP = "database-app-password"
CACHE_APP = "cache-app-password"
CACHE_ACL = "cache-users.acl"
# The cache user the ACL file defines and the services log in as (ElastiCache has its IAM user).
CACHE_USER = "app"
# The service's own secrets (`services[].secrets`): one file per variable, named after it.


@dataclass(frozen=True)
class LocalSecrets:
    directory: Path

    def host_path(self, name: str) -> str:
        return str((self.directory / name).resolve())

    @staticmethod
    def container_path(name: str) -> str:
        return f"{MOUNT}/{name}"


def ensure(directory: Path, cache_user: str, service_secrets: list[str]) -> list[str]:
    """Write any missing secret file (random); return the names written.

    The directory is 0700 (no other user of this machine gets in); the files are 0644 because a bind
    mount keeps the host's owner, and the containers read them as their own non-root users. Existing
    files are kept: a password that PostgreSQL already holds must not change under it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    written = []
    for name in [DATABASE_MASTER, DATABASE_APP, CACHE_APP, *service_secrets]:
        path = directory / name
        if not path.exists():
            path.write_text(token_source.token_urlsafe(24))
            path.chmod(0o644)
            written.append(name)
    acl = directory / CACHE_ACL
    password = (directory / CACHE_APP).read_text().strip()
    # The default user is off: every client logs in as the application's user, as in ElastiCache.
    content = f"user default off\nuser {cache_user} on >{password} ~* &* +@all\n"
    if not acl.exists() or acl.read_text() != content:
        acl.write_text(content)
        acl.chmod(0o644)
        written.append(CACHE_ACL)
    return written
