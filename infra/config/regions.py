"""The AWS regions a stack may name, with how many Availability Zones each offers.

A static table, so that the offline synth needs no AWS call; the count is what a new account
gets (us-west-1 has three zones, new accounts can use two). Source: the AWS "Regions and
Availability Zones" page, as of 2025-11. A region added later is refused until added here.
"""

from __future__ import annotations

REGION_AZS: dict[str, int] = {
    "us-east-1": 6, "us-east-2": 3, "us-west-1": 2, "us-west-2": 4,
    "ca-central-1": 3, "ca-west-1": 3, "mx-central-1": 3, "sa-east-1": 3,
    "eu-west-1": 3, "eu-west-2": 3, "eu-west-3": 3, "eu-central-1": 3, "eu-central-2": 3,
    "eu-north-1": 3, "eu-south-1": 3, "eu-south-2": 3,
    "af-south-1": 3, "il-central-1": 3, "me-south-1": 3, "me-central-1": 3,
    "ap-east-1": 3, "ap-east-2": 3, "ap-south-1": 3, "ap-south-2": 3,
    "ap-northeast-1": 3, "ap-northeast-2": 4, "ap-northeast-3": 3,
    "ap-southeast-1": 3, "ap-southeast-2": 3, "ap-southeast-3": 3, "ap-southeast-4": 3,
    "ap-southeast-5": 3, "ap-southeast-7": 3,
    "us-gov-west-1": 3, "us-gov-east-1": 3,
}


def suggest_region(value: str) -> str:
    import difflib

    match = difflib.get_close_matches(value, list(REGION_AZS), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""
