"""The local target: composes the local layers from the typed stack config, like infra/aws/program.py.

Importing it registers nothing; `build` runs inside the Pulumi runtime (or its mocks).
"""

from __future__ import annotations

import json
from pathlib import Path

import pulumi

from infra import config as cfg
from infra.local import flags
from infra.local.cache import LocalCache, LocalCacheArgs
from infra.local.database import LocalDatabase, LocalDatabaseArgs
from infra.local.gateway import LocalGateway, LocalGatewayArgs
from infra.local.monitoring import LocalMonitoring, LocalMonitoringArgs
from infra.local.network import LocalNetwork, LocalNetworkArgs
from infra.local.secrets import LocalSecrets
from infra.local.services import LocalServices, LocalServicesArgs, container_name

ROOT = Path(__file__).resolve().parents[2]


def built_images(config: cfg.StackConfig) -> dict[str, str]:
    """The stack's images, with those `invoke up` has just built (ops/local.py) taking precedence."""
    import json
    import os

    fresh = json.loads(os.environ.get("REFARCH_LOCAL_IMAGES") or "{}")
    return {**config.images, **{k: v for k, v in fresh.items() if any(s.name == k for s in config.services)}}


def build(config: cfg.StackConfig) -> None:
    stack = pulumi.get_stack()
    prefix = f"{pulumi.get_project()}-{stack}"
    local = config.local_target
    secrets = LocalSecrets(ROOT / local.secrets_dir)

    network = LocalNetwork("network", LocalNetworkArgs(name_prefix=prefix, labels={"stack": stack}))
    nets = network.network_names

    database = LocalDatabase("database", LocalDatabaseArgs(
        config=config.database, image=local.image("database", major=config.database.major_version),
        name_prefix=prefix, stack=stack, data_network=nets["data"], secrets=secrets))
    cache = LocalCache("cache", LocalCacheArgs(
        config=config.cache, image=local.image("cache", version=config.cache.engine_version),
        name_prefix=prefix, stack=stack, data_network=nets["data"], secrets=secrets))

    tracing = config.monitoring.tracing and local.telemetry
    monitoring = None
    if local.telemetry:
        monitoring = LocalMonitoring("monitoring", LocalMonitoringArgs(
            collector_image=local.image("collector"), ui_image=local.image("telemetry_ui"), name_prefix=prefix,
            stack=stack, ui_port=local.telemetry_ui_port, app_network=nets["app"], edge_network=nets["edge"]))

    services = LocalServices("services", LocalServicesArgs(
        services=config.services, images=built_images(config), name_prefix=prefix, stack=stack,
        environment=config.environment, networks=nets, database=database, cache=cache, secrets=secrets,
        tracing=tracing,
        flags_file=str(flags.host_file(ROOT, stack).resolve()) if config.flags.declared else None,
        flag_defaults=json.dumps({f.name: f.default for f in config.flags.declared}, sort_keys=True)))

    gateway = LocalGateway("gateway", LocalGatewayArgs(
        services=config.services, hosts={n: s.host for n, s in services.deployed.items()},
        image=local.image("gateway"), name_prefix=prefix, stack=stack, port=local.gateway_port, networks=nets))

    pulumi.export("target", "local")
    pulumi.export("gateway_url", gateway.url)
    pulumi.export("telemetry_ui_url", monitoring.ui_url if monitoring else None)
    pulumi.export("services", {
        svc.name: {
            "container_name": container_name(prefix, svc),
            "routes": [route.path for route in svc.routes],
            "health_check_path": svc.health_check.path,
        }
        for svc in config.services
    })
    pulumi.export("secrets_dir", local.secrets_dir)
