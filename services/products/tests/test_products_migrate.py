"""Schema migration runner against a real PostgreSQL.

Each test gets a fresh, empty target: its own login role whose same-named schema
comes first in the default search_path ("$user", public). That is much cheaper
than CREATE DATABASE per test, and the runner then works as a non-superuser,
as it does against RDS.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from products import migrate
from products.migrate import MigrationError, apply_migrations, discover

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
REAL_MIGRATIONS = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))


@dataclass(frozen=True)
class Target:
    conninfo: str = field(repr=False)
    env: dict[str, str] = field(repr=False)


@pytest.fixture(scope="session")
def migrate_database(postgres_server) -> str:
    return postgres_server.create_database("migrate")


@pytest.fixture
def target(postgres_server, migrate_database: str) -> Target:
    role, password = f"m_{uuid.uuid4().hex[:12]}", secrets.token_hex(16)
    with postgres_server.connect(migrate_database) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        admin.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(role), sql.Identifier(role)
            )
        )
    env = postgres_server.env(migrate_database) | {
        "DATABASE_USER": role,
        "DATABASE_PASSWORD": password,
        "PRODUCTS_MIGRATIONS_DIR": str(MIGRATIONS_DIR),
    }
    conninfo = make_conninfo(
        host=postgres_server.host,
        port=str(postgres_server.port),
        dbname=migrate_database,
        user=role,
        password=password,
        sslmode="disable",
    )
    return Target(conninfo, env)


@pytest.fixture
def conn(target: Target):
    with psycopg.connect(target.conninfo, autocommit=True) as connection:
        yield connection


@pytest.fixture
def env(target: Target, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in target.env.items():
        monkeypatch.setenv(name, value)
    return target.env


def copy_migrations(tmp_path: Path, extra: dict[str, str]) -> Path:
    """The service's real migrations plus ``extra`` files (name -> SQL)."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    for name, text in extra.items():
        (directory / name).write_text(text)
    return directory


def recorded(conn: psycopg.Connection) -> list[str]:
    return [
        row[0] for row in conn.execute("SELECT filename FROM schema_migrations ORDER BY version")
    ]


def table_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def test_real_migrations_are_well_formed() -> None:
    assert REAL_MIGRATIONS and REAL_MIGRATIONS[0].startswith("0001_")
    assert [m.filename for m in discover(MIGRATIONS_DIR)] == REAL_MIGRATIONS


def test_migrations_apply_once_and_are_idempotent(
    target: Target, conn, env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert migrate.main([]) == 0  # DATABASE_* and PRODUCTS_MIGRATIONS_DIR from the environment
    out = capsys.readouterr().out
    for name in REAL_MIGRATIONS:
        assert f"applied {name}" in out
    assert recorded(conn) == REAL_MIGRATIONS
    assert table_exists(conn, "products")

    assert migrate.main([]) == 0
    assert "done, 0 applied" in capsys.readouterr().out
    assert apply_migrations(target.conninfo, MIGRATIONS_DIR) == []
    assert recorded(conn) == REAL_MIGRATIONS


def test_failing_migration_is_named_and_rolled_back(
    conn, env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = copy_migrations(
        tmp_path,
        {
            "0100_add_widgets.sql": "CREATE TABLE widgets (id int PRIMARY KEY);",
            # The first statement succeeds; the second fails: the whole file must roll back.
            "0101_broken_gadgets.sql": (
                "CREATE TABLE gadgets (id int);\nALTER TABLE nope ADD x int;"
            ),
            "0102_never_reached.sql": "CREATE TABLE later (id int);",
        },
    )
    assert migrate.main(["--dir", str(directory)]) == 1
    err = capsys.readouterr().err
    assert "FAILED 0101_broken_gadgets.sql" in err
    assert 'relation "nope" does not exist' in err

    assert recorded(conn) == [*REAL_MIGRATIONS, "0100_add_widgets.sql"]
    assert table_exists(conn, "widgets")
    assert not table_exists(conn, "gadgets")  # rolled back with its file
    assert not table_exists(conn, "later")  # nothing after the failure runs

    # Fixed, the next run applies exactly what is left.
    (directory / "0101_broken_gadgets.sql").write_text("CREATE TABLE gadgets (id int);")
    assert migrate.main(["--dir", str(directory)]) == 0
    assert recorded(conn)[-2:] == ["0101_broken_gadgets.sql", "0102_never_reached.sql"]
    assert table_exists(conn, "gadgets") and table_exists(conn, "later")


def test_cli_exits_non_zero_naming_the_failing_file(env: dict[str, str], tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path, {"0100_syntax_error.sql": "CREATE TABLE (;"})
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "products.migrate"],
        env=os.environ | env | {"PRODUCTS_MIGRATIONS_DIR": str(directory)},  # as in the image
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0100_syntax_error.sql" in result.stderr
    assert "syntax error" in result.stderr
    assert env["DATABASE_PASSWORD"] not in result.stdout + result.stderr


def test_concurrent_runners_are_serialised_by_the_advisory_lock(
    target: Target, conn, tmp_path: Path
) -> None:
    # A slow migration keeps the first runner busy while the second one starts.
    directory = copy_migrations(
        tmp_path, {"0100_slow.sql": "SELECT pg_sleep(0.5); CREATE TABLE slow (id int);"}
    )
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(apply_migrations(target.conninfo, directory, log=lambda _: None))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    runners = [threading.Thread(target=run) for _ in range(2)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(timeout=30)

    assert errors == []
    expected = [*REAL_MIGRATIONS, "0100_slow.sql"]
    # One runner applied everything, the other found nothing left to do.
    assert sorted(results, key=len) == [[], expected]
    assert recorded(conn) == expected


def test_lock_wait_is_bounded(target: Target) -> None:
    with psycopg.connect(target.conninfo, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (migrate.LOCK_KEY,))
        with pytest.raises(MigrationError, match="another runner"):
            apply_migrations(target.conninfo, MIGRATIONS_DIR, wait_timeout="200ms")


def test_editing_an_applied_migration_is_an_error(target: Target, conn, tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path, {})
    apply_migrations(target.conninfo, directory, log=lambda _: None)
    first = directory / REAL_MIGRATIONS[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError) as excinfo:
        apply_migrations(target.conninfo, directory)
    assert excinfo.value.filename == REAL_MIGRATIONS[0]
    assert "changed after it was applied" in excinfo.value.reason


@pytest.mark.parametrize(
    ("files", "bad"),
    [
        ({"1_short.sql": "SELECT 1;"}, "1_short.sql"),
        ({"0100_Upper_Case.sql": "SELECT 1;"}, "0100_Upper_Case.sql"),
        ({"0001_duplicate_version.sql": "SELECT 1;"}, "0001_duplicate_version.sql"),
    ],
)
def test_badly_named_files_are_rejected(tmp_path: Path, files: dict[str, str], bad: str) -> None:
    with pytest.raises(MigrationError) as excinfo:
        discover(copy_migrations(tmp_path, files))
    assert bad in str(excinfo.value)


def test_missing_configuration_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DATABASE_HOST", "DATABASE_NAME", "DATABASE_USER", "DATABASE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    assert migrate.main([]) == 2
    assert "DATABASE_HOST" in capsys.readouterr().err


def test_cli_creates_and_grants_the_app_role_as_infra_runs_it(
    postgres_server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # C2: the migration task logs in as the master user, with DATABASE_APP_USER naming the
    # role the service logs in as (with IAM tokens on RDS, so it gets no password).
    database, role = postgres_server.create_database("appuser"), f"app_{uuid.uuid4().hex[:8]}"
    env = postgres_server.env(database) | {
        "DATABASE_AUTH": "password",
        "DATABASE_APP_USER": role,
        "PRODUCTS_MIGRATIONS_DIR": str(MIGRATIONS_DIR),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert migrate.main([]) == 0
    out = capsys.readouterr().out
    assert f"created role {role}" in out and f"granted {role} SELECT, INSERT" in out
    assert migrate.main([]) == 0  # a second deploy: nothing to create, grants re-applied
    assert "created role" not in capsys.readouterr().out
    with postgres_server.connect(database) as admin:
        privileges = admin.execute(
            "SELECT has_table_privilege(%s, 'products', 'INSERT'),"
            " has_table_privilege(%s, 'products', 'DELETE'),"
            " (SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = %s)",
            (role, role, role),
        ).fetchone()
    assert privileges == (True, False, True)


def test_cli_sets_the_app_roles_password_from_a_file_as_the_local_target_runs_it(
    postgres_server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    # The local target has no IAM tokens: the app role logs in with the password in its secret file.
    database, role = postgres_server.create_database("applocal"), f"app_{uuid.uuid4().hex[:8]}"
    secret = tmp_path / "database-app-password"
    secret.write_text("s3cret-from-file\n")
    env = postgres_server.env(database) | {
        "DATABASE_AUTH": "password",
        "DATABASE_APP_USER": role,
        "DATABASE_APP_PASSWORD_FILE": str(secret),
        "PRODUCTS_MIGRATIONS_DIR": str(MIGRATIONS_DIR),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert migrate.main([]) == 0
    out = capsys.readouterr().out
    assert f"set the password of {role} from DATABASE_APP_PASSWORD_FILE" in out
    assert "s3cret-from-file" not in out
    conninfo = postgres_server.conninfo(database)
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(conninfo) | {"user": role, "password": "s3cret-from-file"}
    with psycopg.connect(make_conninfo(**params)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)
