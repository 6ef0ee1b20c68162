"""The permissions boundary every IAM role of the stack carries.

ci/bootstrap creates one boundary per environment, `<project>-<stack>-boundary` (the most any role
of that stack may ever do), and the environment's deploy role can create or edit a role only if
it carries exactly that boundary. A stack deployed without the bootstrap switches it off with
`delivery.permissions_boundary: false`.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.config.naming import boundary_name

__all__ = ["boundary_name", "permissions_boundary_arn"]


def permissions_boundary_arn(prefix: str, enabled: bool, parent: pulumi.Resource | None = None
                             ) -> pulumi.Output[str] | None:
    if not enabled:
        return None
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    account = aws.get_caller_identity_output(opts=invoke).account_id
    partition = aws.get_partition_output(opts=invoke).partition
    return pulumi.Output.concat("arn:", partition, ":iam::", account, ":policy/", boundary_name(prefix))
