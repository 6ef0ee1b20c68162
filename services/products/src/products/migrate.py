"""Versioned SQL schema migrations: ``python -m products.migrate [--dir DIR]``.

* Files are named ``NNNN_description.sql`` (four digits, lowercase words) and
  applied in version order.
* Each file runs in its own transaction together with the row that records it
  in ``schema_migrations``: a failing file leaves no trace and is reported by name.
* A session-level PostgreSQL advisory lock serialises runners: a second runner
  started at the same time waits, then finds nothing left to apply.
* The checksum of every applied file is stored; editing an applied file is an
  error (write a new migration instead).
* With ``DATABASE_APP_USER`` set, the runner then creates that login role if it is missing
  (no password: on RDS it logs in with IAM tokens) and grants it what the API needs and no
  more: CONNECT, USAGE on the schema, SELECT and INSERT on its tables (now and future),
  and ``rds_iam`` when that role exists (it does on RDS, not on a plain PostgreSQL).

Connection settings come from the same ``DATABASE_*`` variables as the API.
Exit codes: 0 success, 1 a migration failed, 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from products.config import ConfigError, DatabaseSettings
from products.credentials import CredentialError

# int.from_bytes(b"products", "big"): a fixed, recognisable pg_advisory_lock key.
LOCK_KEY = 0x70726F6475637473
FILENAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")
SOURCE_TREE_DIR = Path(__file__).resolve().parents[2] / "migrations"

_CREATE_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        version    text        PRIMARY KEY,
        filename   text        NOT NULL,
        checksum   text        NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    )
"""


class MigrationError(Exception):
    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


@dataclass(frozen=True)
class Migration:
    version: str
    filename: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def default_directory() -> Path:
    configured = os.environ.get("PRODUCTS_MIGRATIONS_DIR")
    return Path(configured) if configured else SOURCE_TREE_DIR


def discover(directory: Path) -> list[Migration]:
    """All migrations in ``directory``, in version order; any misnamed ``.sql`` file is an error."""
    if not directory.is_dir():
        raise MigrationError(str(directory), "migrations directory not found")
    by_version: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILENAME.match(path.name)
        if match is None:
            raise MigrationError(path.name, "file name must look like 0001_short_description.sql")
        version = match["version"]
        if version in by_version:
            raise MigrationError(
                path.name, f"duplicate version {version} (also {by_version[version].filename})"
            )
        by_version[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [by_version[v] for v in sorted(by_version)]


def _set(conn: psycopg.Connection, name: str, value: str) -> None:
    conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def apply_migrations(
    conninfo: str,
    directory: Path,
    *,
    wait_timeout: str = "5min",
    lock_timeout: str = "10s",
    log: Callable[[str], object] = print,
) -> list[str]:
    """Apply pending migrations; returns the file names applied by this call.

    ``wait_timeout`` bounds how long to wait for another runner's advisory lock;
    ``lock_timeout`` bounds how long a migration statement may wait for a table
    lock held by the running application (fail fast instead of queueing traffic).
    """
    migrations = discover(directory)
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        _set(conn, "lock_timeout", wait_timeout)
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        except psycopg.errors.LockNotAvailable as exc:
            raise MigrationError(
                "schema_migrations", "timed out waiting for another runner"
            ) from exc
        try:
            _set(conn, "lock_timeout", lock_timeout)
            conn.execute(_CREATE_TABLE)
            rows = conn.execute("SELECT version, filename, checksum FROM schema_migrations")
            applied = {version: (filename, checksum) for version, filename, checksum in rows}
            for migration in migrations:
                if migration.version in applied:
                    filename, checksum = applied[migration.version]
                    if checksum != migration.checksum:
                        raise MigrationError(
                            migration.filename,
                            f"changed after it was applied (recorded as {filename}); "
                            "never edit an applied migration, add a new one",
                        )
                    continue
                try:
                    with conn.transaction():
                        # No parameters: sent as one simple query, so a file may
                        # hold several statements.
                        conn.execute(migration.sql.encode("utf-8"))
                        conn.execute(
                            "INSERT INTO schema_migrations (version, filename, checksum)"
                            " VALUES (%s, %s, %s)",
                            (migration.version, migration.filename, migration.checksum),
                        )
                except psycopg.Error as exc:
                    reason = str(exc).strip() or type(exc).__name__
                    raise MigrationError(migration.filename, reason) from exc
                applied_now.append(migration.filename)
                log(f"applied {migration.filename}")
        finally:
            # Closing the session would release the lock too; unlock explicitly
            # but never let a failed unlock hide the original error.
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now


def grant_app_role(conninfo: str, role: str, log: Callable[[str], object] = print,
                   password: str | None = None) -> None:
    """Create ``role`` if missing and grant it the API's privileges (idempotent).

    ``password`` (the local target, where no IAM tokens exist) becomes the role's password, set on
    every run so the role follows its secret file.
    """
    ident = sql.Identifier(role)
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
            log(f"created role {role}")
        if password:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(password)))
            log(f"set the password of {role} from DATABASE_APP_PASSWORD_FILE")
        row = conn.execute("SELECT current_database(), current_schema()").fetchone()
        assert row is not None
        database, schema = (sql.Identifier(name) for name in row)
        for statement in (
            "GRANT CONNECT ON DATABASE {db} TO {role}",
            "GRANT USAGE ON SCHEMA {schema} TO {role}",
            "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {schema} TO {role}",
            # Tables later migrations create (as this same migration user) too.
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT ON TABLES TO {role}",
        ):
            conn.execute(sql.SQL(statement).format(db=database, schema=schema, role=ident))
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam'").fetchone():
            conn.execute(sql.SQL("GRANT rds_iam TO {}").format(ident))
            log(f"granted rds_iam to {role}")
    log(f"granted {role} SELECT, INSERT on the schema's tables")


def _app_password() -> str | None:
    path = os.environ.get("DATABASE_APP_PASSWORD_FILE")
    return Path(path).read_text().strip() if path else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m products.migrate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="migrations directory (default: $PRODUCTS_MIGRATIONS_DIR, else the source tree's)",
    )
    parser.add_argument("--wait-timeout", default="5min", help="max wait for another runner")
    parser.add_argument("--lock-timeout", default="10s", help="max wait for a table lock")
    args = parser.parse_args(argv)

    try:
        settings = DatabaseSettings.from_env()
    except ConfigError as exc:
        print(f"migrate: configuration error: {exc}", file=sys.stderr)
        return 2
    directory = args.dir or default_directory()
    print(f"migrate: {settings.describe()} from {directory}", flush=True)

    def say(line: str) -> None:
        print(f"migrate: {line}", flush=True)

    try:
        password = settings.credential()()
        conninfo = make_conninfo(
            settings.conninfo(application_name="products-migrate", app_session=False),
            password=password or None,
        )
        applied = apply_migrations(
            conninfo,
            directory,
            wait_timeout=args.wait_timeout,
            lock_timeout=args.lock_timeout,
            log=say,
        )
        if settings.app_user:
            grant_app_role(conninfo, settings.app_user, log=say, password=_app_password())
    except CredentialError as exc:
        print(f"migrate: credential error: {exc}", file=sys.stderr)
        return 2
    except MigrationError as exc:
        print(f"migrate: FAILED {exc.filename}: {exc.reason}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        print(f"migrate: database error: {str(exc).strip()}", file=sys.stderr)
        return 1
    print(f"migrate: done, {len(applied)} applied", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
