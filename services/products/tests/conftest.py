"""Fixtures: a real PostgreSQL and a real Redis, started once per test session.

Both run from the Debian packages (postgresql-15 / redis-server) on free
127.0.0.1 ports with their data (and PostgreSQL's unix socket directory) in a
fresh temp directory, and are stopped and deleted at the end of the session.

PostgreSQL refuses to run as root: when the tests run as root the server is
started as the ``postgres`` system user (or ``nobody`` if there is none) by
dropping privileges in the child process; as a normal user it runs as that user.

If the server binaries are missing the tests are skipped, or fail with a clear
message when the ``CI`` environment variable is set.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import uvicorn
from psycopg import sql
from psycopg.conninfo import make_conninfo

with warnings.catch_warnings():
    # Newer Starlette prefers the "httpx2" fork and warns when the TestClient
    # runs on httpx; both work, so keep that notice out of the test output.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

from products.app import create_app
from products.config import CacheSettings, DatabaseSettings, Settings
from products.migrate import apply_migrations

STARTUP_TIMEOUT = 20.0
PG_ROOT = Path("/usr/lib/postgresql")
PG_USER = "products_test"
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(message: str) -> None:
    """Fail under CI (a missing server must not pass silently), skip elsewhere."""
    if _in_ci():
        pytest.fail(f"{message} [CI is set, so this is a failure, not a skip]", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bindir() -> Path | None:
    candidates: list[Path] = []
    if os.environ.get("PG_BIN"):
        candidates.append(Path(os.environ["PG_BIN"]))
    if PG_ROOT.is_dir():
        versions = [p for p in PG_ROOT.iterdir() if p.name.isdigit()]
        candidates += [p / "bin" for p in sorted(versions, key=lambda p: int(p.name), reverse=True)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "postgres")):
            return bindir
    return None


def _redis_binary() -> str | None:
    return shutil.which("redis-server") or shutil.which("valkey-server")


def _unprivileged_ids() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    _unavailable(
        "running as root but there is no 'postgres' (or 'nobody') user to run PostgreSQL as: "
        "useradd --system --no-create-home --shell /usr/sbin/nologin postgres"
    )
    return None  # unreachable


def _as(ids: tuple[int, int] | None) -> dict[str, Any]:
    if ids is None:
        return {}
    return {"user": ids[0], "group": ids[1], "extra_groups": []}


def _stop(proc: subprocess.Popen, sig: int, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    process: subprocess.Popen | None = field(default=None, repr=False)
    _start: Callable[[PostgresServer], None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Fast shutdown: sessions are ended and the port refuses connections."""
        assert self.process is not None
        _stop(self.process, signal.SIGINT)

    def start(self) -> None:
        """Start the stopped cluster again, on the same port with the same data."""
        assert (
            self._start is not None and self.process is not None and self.process.poll() is not None
        )
        self._start(self)

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to the postmaster and each of its children, by PID.

        Not ``killpg``: every PostgreSQL child process calls setsid() and so leaves the
        postmaster's process group.
        """
        assert self.process is not None
        parent = self.process.pid
        pids = [parent]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # "pid (comm) state ppid ...": comm may hold spaces, so split after ")".
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    pids.append(int(stat.parent.name))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def conninfo(self, dbname: str = "postgres") -> str:
        return make_conninfo(
            host=self.host,
            port=str(self.port),
            dbname=dbname,
            user=self.user,
            password=self.password,
            sslmode="disable",
            connect_timeout="2",
        )

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.conninfo(dbname), autocommit=True)

    def create_database(self, prefix: str = "test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def database_settings(self, dbname: str, **overrides: Any) -> DatabaseSettings:
        values: dict[str, Any] = dict(
            host=self.host,
            port=self.port,
            name=dbname,
            user=self.user,
            password=self.password,
            sslmode="disable",
            connect_timeout=2,
        )
        values.update(overrides)
        return DatabaseSettings(**values)

    def env(self, dbname: str) -> dict[str, str]:
        """The DATABASE_* variables the platform would inject for this server."""
        return {
            "DATABASE_HOST": self.host,
            "DATABASE_PORT": str(self.port),
            "DATABASE_NAME": dbname,
            "DATABASE_USER": self.user,
            "DATABASE_PASSWORD": self.password,
            "DATABASE_SSLMODE": "disable",
        }


@dataclass
class RedisServer:
    host: str
    port: int
    password: str = field(repr=False)
    process: subprocess.Popen = field(repr=False)

    def client(self) -> redis.Redis:
        return redis.Redis(
            host=self.host, port=self.port, password=self.password, decode_responses=True
        )

    def cache_settings(self, **overrides: Any) -> CacheSettings:
        values: dict[str, Any] = dict(
            host=self.host, port=self.port, tls=False, auth_token=self.password, ttl_seconds=60
        )
        values.update(overrides)
        return CacheSettings(**values)

    def stop(self) -> None:
        if self.process.poll() is None:  # a test may have left it frozen
            self.process.send_signal(signal.SIGCONT)
        _stop(self.process, signal.SIGTERM)


def start_redis(workdir: Path) -> RedisServer:
    """Start a password-protected redis-server in ``workdir``; the caller must ``stop()`` it."""
    binary = _redis_binary()
    if binary is None:
        _unavailable("redis-server not found on PATH: apt-get install redis-server")
    assert binary is not None
    workdir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_hex(16)
    port = free_port()
    log_path = workdir / "redis.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(workdir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--requirepass",
                password,
                "--loglevel",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RedisServer("127.0.0.1", port, password, process)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"redis-server exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            with server.client() as client:
                client.ping()
            return server
        except redis.RedisError:
            if time.monotonic() > deadline:
                server.stop()
                pytest.fail(f"redis-server did not start in time:\n{_tail(log_path)}")
            time.sleep(0.05)


@contextlib.contextmanager
def postgres_instance() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL cluster on a free port, stopped and deleted on exit."""
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable(
            "PostgreSQL server binaries (initdb, postgres) not found in $PG_BIN, "
            f"{PG_ROOT}/*/bin or PATH: apt-get install postgresql"
        )
    assert bindir is not None
    ids = _unprivileged_ids()
    # When privileges are dropped the server user must be able to reach the directory:
    # use /tmp itself rather than a $TMPDIR that may sit under root's home.
    base = Path(tempfile.mkdtemp(prefix="products-pg-", dir="/tmp" if ids else None))  # noqa: S108
    process: subprocess.Popen | None = None
    try:
        password = secrets.token_hex(16)
        datadir, sockdir, pwfile = base / "data", base / "sock", base / "pwfile"
        sockdir.mkdir()
        pwfile.write_text(password + "\n")
        if ids is not None:
            for path in (base, sockdir, pwfile):
                os.chown(path, *ids)
        initdb = subprocess.run(  # noqa: S603 - fixed argv
            [
                str(bindir / "initdb"),
                "--pgdata",
                str(datadir),
                "--username",
                PG_USER,
                "--pwfile",
                str(pwfile),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=base,
            **_as(ids),
        )
        if initdb.returncode != 0:
            pytest.fail(f"initdb failed ({initdb.returncode}):\n{initdb.stdout}\n{initdb.stderr}")

        port = free_port()
        log_path = base / "postgres.log"

        def launch() -> subprocess.Popen:
            with open(log_path, "ab") as log:
                return subprocess.Popen(  # noqa: S603 - fixed argv
                    [
                        str(bindir / "postgres"),
                        "-D",
                        str(datadir),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-k",
                        str(sockdir),
                        # A throwaway test server: durability off for speed.
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "max_connections=60",
                        "-c",
                        "shared_buffers=32MB",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=base,
                    start_new_session=True,
                    **_as(ids),
                )

        def start(server: PostgresServer) -> None:
            nonlocal process
            process = server.process = launch()
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                if process.poll() is not None:
                    pytest.fail(f"postgres exited with {process.returncode}:\n{_tail(log_path)}")
                try:
                    with server.connect():
                        return
                except psycopg.OperationalError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"postgres did not start in time:\n{_tail(log_path)}")
                    time.sleep(0.05)

        server = PostgresServer("127.0.0.1", port, PG_USER, password, None, start)
        start(server)
        yield server
    finally:
        if process is not None:
            if process.poll() is None:  # a test may have left it frozen
                server.signal_all(signal.SIGCONT)
            _stop(process, signal.SIGINT)  # SIGINT = "fast" shutdown
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with postgres_instance() as server:
        yield server


@pytest.fixture
def postgres_factory() -> Iterator[Callable[[], PostgresServer]]:
    """Starts private PostgreSQL clusters (to stop or freeze one mid-test), removed at teardown."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(postgres_instance())


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[[], RedisServer]]:
    """Starts extra, private Redis servers (e.g. to kill one mid-test); all stopped at teardown."""
    started: list[RedisServer] = []

    def start() -> RedisServer:
        server = start_redis(tmp_path / f"redis-{len(started)}")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def unused_port() -> int:
    """A 127.0.0.1 port nothing listens on."""
    return free_port()


@pytest.fixture(scope="session")
def app_database(postgres_server: PostgresServer) -> str:
    """A database migrated with the service's real migrations, shared by the API tests."""
    name = postgres_server.create_database("products_api")
    apply_migrations(postgres_server.conninfo(name), MIGRATIONS_DIR, log=lambda _line: None)
    return name


@pytest.fixture
def settings(
    postgres_server: PostgresServer, redis_server: RedisServer, app_database: str
) -> Settings:
    return Settings(
        database=postgres_server.database_settings(app_database),
        cache=redis_server.cache_settings(),
        health_timeout_seconds=1.0,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def db(postgres_server: PostgresServer, app_database: str) -> Iterator[psycopg.Connection]:
    """A direct (autocommit) connection to the API tests' database."""
    with postgres_server.connect(app_database) as conn:
        yield conn


@pytest.fixture
def cache(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis_server.client() as client:
        yield client


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The real app under uvicorn (HTTP/1.1 over TCP) in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_config=None,
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the app did not start under uvicorn")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def serve() -> Callable[[Settings], contextlib.AbstractContextManager[str]]:
    """``serving`` as a fixture: test modules cannot import conftest (importlib import mode)."""
    return serving


# --- a token issuer: an RSA key made here, its JWKS served over real HTTP ----------------------


class TestIssuer:
    """Signs tokens with keys generated in the test and serves their JWKS on 127.0.0.1."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.fetches = 0
        self.available = True
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/issuer"
        self.jwks_url = f"http://127.0.0.1:{self.port}/.well-known/jwks.json"
        self.client_id = "test-client"
        self._server: Any = None

    def jwks(self) -> dict[str, Any]:
        import json

        from jwt.algorithms import RSAAlgorithm

        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": self.client_id,
            "client_id": self.client_id,
            "token_use": "access",
            "scope": "products/write",
            "iat": now,
            "exp": now + 3600,
            "jti": str(uuid.uuid4()),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, key: Any = None, kid: str | None = None, **overrides: Any) -> str:
        import jwt

        return jwt.encode(
            self.claims(**overrides),
            key or self.key,
            algorithm="RS256",
            headers={"kid": kid or self.kid},
        )

    def settings(self, **overrides: Any) -> Any:
        from products.config import AuthSettings

        fields = {
            "issuer": self.issuer,
            "jwks_url": self.jwks_url,
            "audience": self.client_id,
            "write_scopes": ("products/write",),
            "jwks_timeout_seconds": 1.0,
        }
        return AuthSettings(**{**fields, **overrides})

    def start(self) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path != "/.well-known/jwks.json" or not issuer.available:
                    self.send_error(404 if issuer.available else 503)
                    return
                issuer.fetches += 1
                body = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, name="jwks", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    test_issuer = TestIssuer()
    test_issuer.start()
    try:
        yield test_issuer
    finally:
        test_issuer.stop()
