"""The gateway's listener rules as an HAProxy configuration, with the ALB's semantics.

The AWS gateway is an ALB listener: rules in priority order (lowest first, first match wins), each a
path pattern (case-sensitive glob on the path, `*` any run of characters, `?` one) and optionally a
host header (case-insensitive glob, port ignored), and a fixed 404 when nothing matches. The same
rules, in the same order, become `use_backend` lines here, and each target group's health check an
HAProxy check with the same path, interval, timeout, thresholds and 200-399 matcher.

Pure text from the typed config: tested without an engine, and by `haproxy -c` where it is installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra.config import ServiceConfig
from infra.config.services import rule_priorities

# HAProxy runs unprivileged in its container: it cannot bind below 1024.
LISTEN_PORT = 8080
# Docker's embedded DNS: the services' addresses follow their containers.
DOCKER_DNS = "127.0.0.11:53"


@dataclass(frozen=True)
class Rule:
    priority: int
    service: str
    path: str
    host: str | None


def glob_regex(pattern: str) -> str:
    """An ALB wildcard pattern as an anchored regular expression."""
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return "^" + "".join(parts) + "$"


def rules(services: list[ServiceConfig]) -> list[Rule]:
    """Every route as a rule, in the order the ALB evaluates them."""
    found = [
        Rule(priority, svc.name, route.path, route.host)
        for i, svc in enumerate(services)
        for priority, route in zip(rule_priorities(i, len(svc.routes)), svc.routes, strict=True)
    ]
    return sorted(found, key=lambda rule: rule.priority)


def _quoted(regex: str) -> str:
    # HAProxy's own quoting: inside double quotes `\`, `"` and `$` (variable expansion) take a backslash.
    return '"' + re.sub(r'([\\"$])', r"\\\1", regex) + '"'


def render(services: list[ServiceConfig], hosts: dict[str, str], listen_port: int = LISTEN_PORT,
           ports: dict[str, int] | None = None) -> str:
    """The whole haproxy.cfg; `hosts` maps a service name to its container's DNS name (`ports`, a
    service to another port than its own: how a test on one host runs several services)."""
    lines = [
        "# Rendered by infra/local/haproxy.py from the stack's services: do not edit.",
        "global",
        "    log stdout format raw local0",
        "",
        "resolvers docker",
        f"    nameserver dns {DOCKER_DNS}",
        "    hold valid 5s",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option forwardfor",
        "    timeout connect 5s",
        "    timeout client 60s",  # the ALB's idle timeout default
        "    timeout server 60s",
        "",
        "frontend gateway",
        f"    bind :{listen_port}",
        # The ALB matches hosts without the port and ignoring case.
        "    http-request set-var(txn.host) req.hdr(host),field(1,:),lower",
    ]
    uses: list[str] = []
    for rule in rules(services):
        acl = f"r{rule.priority}"
        lines.append(f"    acl {acl}_path path -m reg {_quoted(glob_regex(rule.path))}")
        conditions = [f"{acl}_path"]
        if rule.host:
            lines.append(f"    acl {acl}_host var(txn.host) -m reg {_quoted(glob_regex(rule.host.lower()))}")
            conditions.append(f"{acl}_host")
        uses.append(f"    use_backend svc_{_ident(rule.service)} if {' '.join(conditions)}")
    lines += uses
    lines += ["    default_backend not_found", "",
              "backend not_found",
              '    http-request return status 404 content-type "text/plain" string "Not Found"']
    for svc in services:
        check = svc.health_check
        lines += [
            "",
            f"backend svc_{_ident(svc.name)}",
            f"    option httpchk GET {check.path}",
            "    http-check expect rstatus ^[23]",  # the target group's 200-399 matcher
            f"    timeout check {check.timeout}s",
            f"    default-server inter {check.interval}s rise {check.healthy_threshold} "
            f"fall {check.unhealthy_threshold}",
            f"    server {_ident(svc.name)} {hosts[svc.name]}:{(ports or {}).get(svc.name, svc.port)} "
            "check resolvers docker init-addr last,libc,none",
        ]
    return "\n".join(lines) + "\n"


def _ident(name: str) -> str:
    return name.replace("-", "_")
