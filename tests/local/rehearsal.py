"""Creates what a local stack's synth registered (networks, volumes, containers) with the Docker SDK.

Nothing here is written by hand a second time: every name, network, alias, mount, limit, health check,
upload, port and dependency comes from the synth's recorded inputs. Only the images are swapped where
the pinned one cannot be pulled on this machine (`images`, by resource name), and every name takes a
suffix so a rehearsal never meets a real local stack.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

from ops.synth import Synth

NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
CONTAINER = "docker:index/container:Container"


def duration(value: str | None) -> int:
    """`10s` -> nanoseconds, as the Engine API wants them."""
    return int(float((value or "0s").removesuffix("s")) * 1_000_000_000)


@dataclass
class Rehearsal:
    engine: Any
    synth: Synth
    images: dict[str, str]
    suffix: str
    host_ports: dict[int, int]  # a published port -> the free port the rehearsal uses instead
    created: list[Any] = field(default_factory=list)
    containers: dict[str, Any] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def name(self, value: str) -> str:
        return f"{value}-{self.suffix}"

    def up(self) -> None:
        by_urn = {r["urn"]: r for r in self.synth.resources}
        graph = {r["urn"]: [d for d in r["options"]["dependencies"] if d in by_urn]
                 for r in self.synth.resources if r["type"] in (NETWORK, VOLUME, CONTAINER)}
        for urn in TopologicalSorter(graph).static_order():
            resource = by_urn[urn]
            if resource["type"] == NETWORK:
                inputs = resource["inputs"]
                self.created.append(self.engine.networks.create(
                    self.name(inputs["name"]), driver=inputs.get("driver", "bridge"),
                    internal=bool(inputs.get("internal")), labels=_labels(inputs)))
            elif resource["type"] == VOLUME:
                self.created.append(self.engine.volumes.create(self.name(resource["inputs"]["name"]),
                                                               labels=_labels(resource["inputs"])))
            elif resource["type"] == CONTAINER:
                self._container(resource)
                self.order.append(resource["name"])

    def _container(self, resource: dict[str, Any]) -> None:
        from docker.types import Mount

        inputs = resource["inputs"]
        mounts = [Mount(target=m["target"], source=m["source"], type=m["type"], read_only=bool(m.get("readOnly")))
                  for m in inputs.get("mounts", [])]
        mounts += [Mount(target=v["containerPath"], source=self.name(v["volumeName"]),
                         type="volume") for v in inputs.get("volumes", [])]
        networks = inputs.get("networksAdvanced", [])
        kwargs: dict[str, Any] = {
            "name": self.name(inputs["name"]),
            "command": inputs.get("command"),
            "environment": inputs.get("envs", []),
            "user": inputs.get("user"),
            "read_only": bool(inputs.get("readOnly")),
            "tmpfs": inputs.get("tmpfs"),
            "mounts": mounts,
            "cap_drop": (inputs.get("capabilities") or {}).get("drops"),
            "cap_add": (inputs.get("capabilities") or {}).get("adds"),
            "security_opt": inputs.get("securityOpts"),
            "privileged": bool(inputs.get("privileged")),
            "labels": _labels(inputs),
            "ports": {f"{p['internal']}/{p.get('protocol', 'tcp')}": (p["ip"], self.host_ports[p["external"]])
                      for p in inputs.get("ports", [])},
            "detach": True,
        }
        if inputs.get("memory"):
            kwargs["mem_limit"] = f"{inputs['memory']}m"
        if inputs.get("cpus"):
            kwargs["nano_cpus"] = int(float(inputs["cpus"]) * 1_000_000_000)
        if check := inputs.get("healthcheck"):
            kwargs["healthcheck"] = {"test": check["tests"], "interval": duration(check.get("interval")),
                                     "timeout": duration(check.get("timeout")), "retries": check.get("retries"),
                                     "start_period": duration(check.get("startPeriod"))}
        if networks:
            first = networks[0]
            kwargs["network"] = self.name(first["name"])
            kwargs["networking_config"] = {self.name(first["name"]): self.engine.api.create_endpoint_config(
                aliases=first.get("aliases") or None)}
        container = self.engine.containers.create(self.images[resource["name"]], **kwargs)
        self.created.append(container)
        self.containers[resource["name"]] = container
        for extra in networks[1:]:
            self.engine.networks.get(self.name(extra["name"])).connect(container, aliases=extra.get("aliases") or None)
        container.start()
        if inputs.get("attach"):
            code = container.wait(timeout=120)["StatusCode"]
            if code != 0:
                raise AssertionError(f"{resource['name']} exited {code}: {container.logs().decode()[-2000:]}")
        elif inputs.get("wait"):
            self._healthy(container, resource["name"], int(inputs.get("waitTimeout") or 60))

    def _healthy(self, container: Any, name: str, timeout: int) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            container.reload()
            state = container.attrs["State"]
            if state.get("Health", {}).get("Status") == "healthy":
                return
            if state["Status"] == "exited":
                break
            time.sleep(0.5)
        raise AssertionError(f"{name} not healthy within {timeout} s: {container.logs().decode()[-2000:]}")

    def down(self) -> None:
        for thing in reversed(self.created):
            try:
                thing.remove(force=True) if hasattr(thing, "start") else thing.remove()
            except Exception:  # already gone: removing is all that is wanted
                pass


def _labels(inputs: dict[str, Any]) -> dict[str, str]:
    return {item["label"]: item["value"] for item in inputs.get("labels", [])}
