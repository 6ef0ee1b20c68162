"""The local monitoring layer: an OpenTelemetry collector receiving the services' traces and metrics,
and Jaeger as the UI for them (published on 127.0.0.1 only). Optional: `local.telemetry: false`.

In AWS the ADOT sidecar sends traces to X-Ray; here one collector on the app network serves every
service and forwards traces to Jaeger over OTLP.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from infra.local import containers
from infra.local.services import COLLECTOR_HOST

# The collector image has no shell and a read-only root: its configuration comes from the
# environment through the collector's own `env:` config provider.
COLLECTOR_CONFIG_ENV = "OTELCOL_CONFIG"
JAEGER_HOST = "jaeger"
JAEGER_UI_PORT = 16686
# The non-root UID both official images (collector-contrib, Jaeger all-in-one) are built to run as.
TELEMETRY_USER = "10001"

COLLECTOR_CONFIG = f"""\
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: 0.0.0.0:4317}}
      http: {{endpoint: 0.0.0.0:4318}}
processors:
  batch: {{}}
exporters:
  otlp/jaeger:
    endpoint: {JAEGER_HOST}:4317
    tls: {{insecure: true}}
  debug: {{verbosity: basic}}
service:
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [otlp/jaeger]}}
    metrics: {{receivers: [otlp], processors: [batch], exporters: [debug]}}
"""


@dataclass
class LocalMonitoringArgs:
    collector_image: str
    ui_image: str
    name_prefix: str
    stack: str
    ui_port: int
    app_network: pulumi.Input[str]
    edge_network: pulumi.Input[str]


class LocalMonitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: LocalMonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:monitoring:LocalMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ui_image = docker.RemoteImage(f"{name}-ui-image", name=args.ui_image, keep_locally=True, opts=child)
        collector_image = docker.RemoteImage(f"{name}-collector-image", name=args.collector_image,
                                             keep_locally=True, opts=child)
        self.ui = docker.Container(
            f"{name}-ui",
            **containers.hardened(read_only=True, user=TELEMETRY_USER),
            name=f"{args.name_prefix}-jaeger",
            image=ui_image.image_id,
            envs=["COLLECTOR_OTLP_ENABLED=true", "SPAN_STORAGE_TYPE=memory"],
            tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
            ports=[containers.published(JAEGER_UI_PORT, args.ui_port)],
            networks_advanced=containers.attach(
                {"app": args.app_network, "edge": args.edge_network}, [JAEGER_HOST]),
            labels=containers.labels("monitoring", args.stack),
            opts=child,
        )
        self.collector = docker.Container(
            f"{name}-collector",
            **containers.hardened(read_only=True, user=TELEMETRY_USER),
            name=f"{args.name_prefix}-collector",
            image=collector_image.image_id,
            command=[f"--config=env:{COLLECTOR_CONFIG_ENV}"],
            envs=[f"{COLLECTOR_CONFIG_ENV}={COLLECTOR_CONFIG}"],
            networks_advanced=containers.attach({"app": args.app_network}, [COLLECTOR_HOST]),
            labels=containers.labels("monitoring", args.stack),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.ui]),
        )
        self.ui_url = f"http://{containers.LOOPBACK}:{args.ui_port}"
        self.register_outputs({"ui_url": self.ui_url})
