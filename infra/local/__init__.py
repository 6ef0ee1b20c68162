"""The local target: every layer of the architecture as containers on this machine's Docker engine."""
