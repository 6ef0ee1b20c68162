"""The local gateway's configuration, run by a real HAProxy (Debian's package) in front of real servers.

No container engine is needed for this part: the same rendered configuration, with the services'
addresses pointed at servers on 127.0.0.1, proves the ALB's rule semantics hold in HAProxy.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from infra.config import ServiceConfig
from infra.local import haproxy

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
pytestmark = pytest.mark.skipif(
    HAPROXY is None and os.environ.get("CI") != "true",
    reason="haproxy is not installed: apt-get install haproxy (CI installs it)")

SERVICES = [
    ServiceConfig(name="products", build="x", routes=[{"path": "/products*"}, {"path": "/catalog/?"}]),
    ServiceConfig(name="admin", build="x", routes=[{"path": "/admin*", "host": "Admin.Example.com"}],
                  health_check={"path": "/admin/health"}),
    ServiceConfig(name="tenants", build="x", routes=[{"path": "/t/*", "host": "*.tenants.example.com"}]),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def backend(name: str, seen: list[str]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            seen.append(f"{name} {self.path}")
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    seen: list[str] = []
    servers = {svc.name: backend(svc.name, seen) for svc in SERVICES}
    port = free_port()
    config = haproxy.render(SERVICES, {name: "127.0.0.1" for name in servers}, port,
                            {name: server.server_address[1] for name, server in servers.items()})
    path = tmp_path_factory.mktemp("haproxy") / "haproxy.cfg"
    path.write_text(config)
    check = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", seen
    finally:
        proc.terminate()  # by its PID
        proc.wait(timeout=10)
        for server in servers.values():
            server.shutdown()


def get(base: str, path: str, host: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(base + path, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_path_rules_route_like_the_alb(gateway):
    base, _ = gateway
    assert get(base, "/products") == (200, "products")
    assert get(base, "/products/42?x=1") == (200, "products")  # the query string is not part of the path
    assert get(base, "/catalog/7") == (200, "products")  # `?` is exactly one character
    assert get(base, "/catalog/77")[0] == 404
    assert get(base, "/Products")[0] == 404  # ALB path patterns are case-sensitive


def test_host_rules_ignore_case_and_port_and_take_wildcards(gateway):
    base, _ = gateway
    assert get(base, "/admin/users", host="admin.example.com:8080") == (200, "admin")
    assert get(base, "/admin/users", host="ADMIN.example.COM") == (200, "admin")
    assert get(base, "/t/1", host="acme.tenants.example.com") == (200, "tenants")
    assert get(base, "/t/1", host="tenants.example.com")[0] == 404


def test_a_request_no_rule_matches_gets_the_fixed_404(gateway):
    base, _ = gateway
    assert get(base, "/nothing/here") == (404, "Not Found")
    assert get(base, "/admin/users") == (404, "Not Found")  # the admin rule needs its host


def test_health_checks_use_each_target_groups_path(gateway):
    _, seen = gateway
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not {"admin /admin/health", "products /health/ready"} <= set(seen):
        time.sleep(0.2)
    assert {"admin /admin/health", "products /health/ready"} <= set(seen), seen
