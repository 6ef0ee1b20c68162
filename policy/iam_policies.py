"""IAM: no policy grants every action on every resource."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from policy_support import (
    IAM_ATTACHMENTS,
    IAM_POLICY_DOCUMENTS,
    IAM_ROLE,
    MANDATORY,
    Policy,
    get,
    items,
    label_of,
    parse_document,
    resource_policy,
)
from pulumi_policy import ResourceValidationArgs

ADMIN_POLICY_SUFFIX = ":policy/AdministratorAccess"


def _admin_statements(document: Any) -> list[str]:
    """Sids (or positions) of statements that allow every action on every resource."""
    found = []
    for i, statement in enumerate(items(get(document, "Statement"))):
        if get(statement, "Effect") != "Allow":
            continue
        resources = set(items(get(statement, "Resource")))
        actions = set(items(get(statement, "Action")))
        everything = bool(actions & {"*", "*:*"}) or get(statement, "NotAction") is not None
        if everything and "*" in resources:
            found.append(str(get(statement, "Sid") or f"#{i}"))
    return found


def _iam_no_admin(args: ResourceValidationArgs) -> Iterator[str]:
    props, kind = args.props, args.resource_type
    documents: list[tuple[str, Any]] = []
    if kind in IAM_POLICY_DOCUMENTS:
        documents.append(("its policy", props.get("policy")))
    elif kind == IAM_ROLE:
        for inline in items(props.get("inlinePolicies")):
            documents.append((f"inline policy {get(inline, 'name')!r}", get(inline, "policy")))
        if any(str(arn).endswith(ADMIN_POLICY_SUFFIX) for arn in items(props.get("managedPolicyArns"))):
            yield (f"Role '{args.name}' has AdministratorAccess attached. "
                   "Attach a policy that lists the actions and resources the role needs.")
    elif kind in IAM_ATTACHMENTS:
        if str(props.get("policyArn") or "").endswith(ADMIN_POLICY_SUFFIX):
            yield (f"Attachment '{args.name}' grants AdministratorAccess. "
                   "Attach a policy that lists the actions and resources the principal needs.")
    for where, raw in documents:
        document = parse_document(raw)
        if raw is not None and document is None:
            yield f"{args.name}: {where} is not valid JSON. Fix the policy document."
            continue
        statements = _admin_statements(document)
        if statements:
            yield (f"{label_of(args)} allows every action on every resource in {where} "
                   f"(statement {', '.join(statements)}). List the actions and resource ARNs it needs.")


POLICIES: list[Policy] = [
    resource_policy("iam-no-admin", "No IAM policy allows every action on every resource.", MANDATORY,
                    [*IAM_POLICY_DOCUMENTS, IAM_ROLE, *IAM_ATTACHMENTS], _iam_no_admin),
]
