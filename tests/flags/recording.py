"""The test side of ops.flags.Deployments: scripted AppConfig deployment states, every call recorded."""

from __future__ import annotations

from typing import Any

ALARM = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:refarch-dev-flags-health"


class RecordingDeployments:
    """Each started deployment walks through the next script (its GetDeployment states, in order)."""

    def __init__(self, *scripts: list[str], history: list[dict[str, Any]] | None = None):
        self.scripts = [list(s) for s in scripts]
        self.items: list[dict[str, Any]] = list(history or [])  # newest first
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._states: dict[int, list[str]] = {}

    def history(self, application: str, environment: str) -> list[dict[str, Any]]:
        self.calls.append(("history", {"application": application, "environment": environment}))
        return [dict(item) for item in self.items]

    def start(self, *, application: str, environment: str, profile: str, strategy: str, version: int,
              description: str) -> int:
        self.calls.append(("start", {"application": application, "environment": environment, "profile": profile,
                                     "strategy": strategy, "version": version, "description": description}))
        number = max((i["DeploymentNumber"] for i in self.items), default=0) + 1
        self._states[number] = self.scripts.pop(0)
        self.items.insert(0, {"DeploymentNumber": number, "ConfigurationVersion": str(version),
                              "State": self._states[number][0]})
        return number

    def get(self, application: str, environment: str, number: int) -> dict[str, Any]:
        self.calls.append(("get", {"number": number}))
        states = self._states[number]
        state = states.pop(0) if len(states) > 1 else states[0]
        next(i for i in self.items if i["DeploymentNumber"] == number)["State"] = state
        answer: dict[str, Any] = {"DeploymentNumber": number, "State": state, "PercentageComplete": 50.0}
        if state in ("ROLLED_BACK", "ROLLING_BACK"):
            answer["EventLog"] = [
                {"EventType": "ROLLBACK_COMPLETED", "Description": "Rollback completed"},
                {"EventType": "ROLLBACK_STARTED", "Description": f"Rollback initiated by CloudWatch Alarm: {ALARM}"},
            ]
        return answer

    def named(self, call: str) -> list[dict[str, Any]]:
        return [args for name, args in self.calls if name == call]
