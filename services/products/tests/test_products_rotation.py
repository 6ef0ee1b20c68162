"""Credential rotation while the service runs (real PostgreSQL, real Redis ACL users).

Password-file mode stands in for IAM tokens: the app asks for a fresh credential on every
new connection in both, so changing the role's password and the file, then dropping the
open connections, must leave the next requests working without a restart.
"""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

from products.app import create_app
from products.config import Settings
from products.migrate import grant_app_role


def _create(client: TestClient, name: str) -> dict:
    response = client.post("/products", json={"name": name, "price": "3.00"})
    assert response.status_code == 201, response.text
    return response.json()


def test_database_password_rotation_needs_no_restart(
    postgres_server, redis_server, app_database: str, tmp_path: Path
) -> None:
    role, old, new = f"app_{uuid.uuid4().hex[:8]}", secrets.token_hex(12), secrets.token_hex(12)
    grant_app_role(postgres_server.conninfo(app_database), role, log=lambda _line: None)
    with postgres_server.connect(app_database) as admin:
        admin.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(old))
        )
    secret = tmp_path / "db-password"
    secret.write_text(old)
    settings = Settings(
        database=postgres_server.database_settings(
            app_database, user=role, password=None, password_file=str(secret), pool_min_size=2
        ),
        cache=redis_server.cache_settings(),
    )
    with TestClient(create_app(settings)) as client:
        before = _create(client, "before rotation")

        with postgres_server.connect(app_database) as admin:
            admin.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(new))
            )
            secret.write_text(new)
            # Sessions outlive their credential; end them so the pool must log in again.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
            )

        after = _create(client, "after rotation")
        assert client.get(f"/products/{before['id']}").status_code == 200
        assert client.get(f"/products/{after['id']}").json() == after
        assert client.get("/health/ready").json()["database"] == "ok"

        with postgres_server.connect(app_database) as admin:
            logged_in = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)
            ).fetchone()
        assert logged_in is not None and logged_in[0] >= 1  # new sessions, with the new password
    stale = postgres_server.conninfo(app_database).replace(postgres_server.password, old)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(stale.replace(f"user={postgres_server.user}", f"user={role}"))


def test_app_role_has_only_what_the_api_needs(postgres_server, app_database: str) -> None:
    role, password = f"app_{uuid.uuid4().hex[:8]}", secrets.token_hex(12)
    grant_app_role(postgres_server.conninfo(app_database), role, log=lambda _line: None)
    grant_app_role(
        postgres_server.conninfo(app_database), role, log=lambda _line: None
    )  # idempotent
    with postgres_server.connect(app_database) as admin:
        admin.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
    conninfo = psycopg.conninfo.make_conninfo(
        postgres_server.conninfo(app_database), user=role, password=password
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("INSERT INTO products (name, price) VALUES ('granted', 1)")
        assert conn.execute("SELECT count(*) FROM products WHERE name = 'granted'").fetchone()
        for statement in (
            "DELETE FROM products",
            "UPDATE products SET price = 0",
            "DROP TABLE products",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_rds_iam_is_granted_when_the_role_exists(postgres_server) -> None:
    database = postgres_server.create_database("rdsiam")
    role = f"app_{uuid.uuid4().hex[:8]}"
    with postgres_server.connect(database) as admin:
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam'").fetchone()
        if exists is None:
            admin.execute("CREATE ROLE rds_iam NOLOGIN")  # what RDS provides
    lines: list[str] = []
    grant_app_role(postgres_server.conninfo(database), role, log=lines.append)
    with postgres_server.connect(database) as admin:
        member = admin.execute("SELECT pg_has_role(%s, 'rds_iam', 'MEMBER')", (role,)).fetchone()
    assert member == (True,)
    assert f"granted rds_iam to {role}" in lines


def test_cache_acl_password_rotation_needs_no_restart(
    postgres_server, app_database: str, redis_factory, tmp_path: Path
) -> None:
    server = redis_factory()
    user, old, new = "products-app", secrets.token_hex(12), secrets.token_hex(12)
    with server.client() as admin:
        admin.execute_command(
            "ACL",
            "SETUSER",
            user,
            "on",
            f">{old}",
            "resetkeys",
            "~products:*",
            "-@all",
            "+get",
            "+set",
            "+ping",
            "+client|setname",
        )
    secret = tmp_path / "cache-token"
    secret.write_text(old)
    settings = Settings(
        database=postgres_server.database_settings(app_database),
        cache=server.cache_settings(auth_token=None, auth_token_file=str(secret), user=user),
    )
    with TestClient(create_app(settings)) as client:
        product = _create(client, "cached across a rotation")
        url = f"/products/{product['id']}"
        assert client.get(url).headers["x-cache"] == "miss"
        assert client.get(url).headers["x-cache"] == "hit"

        with server.client() as admin:
            admin.execute_command("ACL", "SETUSER", user, "resetpass", f">{new}")
            secret.write_text(new)
            admin.execute_command("CLIENT", "KILL", "USER", user)

        assert client.get(url).headers["x-cache"] == "hit"  # reconnected with the new token
        assert client.get("/health/ready").json() == {
            "status": "ok",
            "database": "ok",
            "cache": "ok",
        }
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(
            host=server.host,
            port=server.port,
            username=user,
            password=old,
            retry=Retry(NoBackoff(), 0),
        ).ping()
