"""IAM: no policy grants everything, and none lets a role escalate or take another environment's resources.

The rules read policy documents statement by statement (wildcards expanded against the actions
they name), so they hold for the CI bootstrap's deploy roles and the stacks' own roles alike.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any

from policy_support import (
    IAM_ATTACHMENTS,
    IAM_POLICY_DOCUMENTS,
    IAM_ROLE,
    MANDATORY,
    Finding,
    Policy,
    PolicyResource,
    Stack,
    as_strings,
    by_environment,
    environment_of,
    get,
    guarded,
    items,
    label_of,
    parse_document,
    resource_policy,
)
from pulumi_policy import ResourceValidationArgs

# Role writes that must stay inside a permissions boundary (iam:PermissionsBoundary condition).
ROLE_WRITES = ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary",
               "iam:UpdateAssumeRolePolicy")
# Ways out of any boundary: never allowed at all.
BOUNDARY_ESCAPES = ("iam:DeleteRolePermissionsBoundary", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion")
# Tagging that decides ownership in tag-based (ABAC) grants.
OWNERSHIP_TAGGING = ("kms:TagResource", "kms:UntagResource", "ec2:CreateTags", "ec2:DeleteTags",
                     "acm:AddTagsToCertificate", "acm:RemoveTagsFromCertificate",
                     "application-autoscaling:TagResource", "application-autoscaling:UntagResource")
REGION_WIDE = ("ec2:*", "acm:*", "application-autoscaling:*")
DNS_WRITE = "route53:ChangeResourceRecordSets"
RECORD_NAMES = "route53:ChangeResourceRecordSetsNormalizedRecordNames"

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


def _documents(args: ResourceValidationArgs) -> Iterator[tuple[str, Any]]:
    if args.resource_type in IAM_POLICY_DOCUMENTS:
        yield "its policy", parse_document(args.props.get("policy"))
    elif args.resource_type == IAM_ROLE:
        for inline in items(args.props.get("inlinePolicies")):
            yield f"inline policy {get(inline, 'name')!r}", parse_document(get(inline, "policy"))


def _allows(document: Any) -> Iterator[tuple[str, Any]]:
    for i, statement in enumerate(items(get(document, "Statement"))):
        if get(statement, "Effect") == "Allow" and get(statement, "Action") is not None:
            yield str(get(statement, "Sid") or f"#{i}"), statement


def _grants(statement: Any, action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in as_strings(get(statement, "Action")))


def _condition_keys(statement: Any) -> set[str]:
    condition = get(statement, "Condition")
    if not isinstance(condition, Mapping):
        return set()
    return {str(key) for block in condition.values() if isinstance(block, Mapping) for key in block}


def _on_everything(statement: Any) -> bool:
    return any(r == "*" for r in as_strings(get(statement, "Resource")))


def _escalation(args: ResourceValidationArgs) -> Iterator[str]:
    for where, document in _documents(args):
        for sid, s in _allows(document):
            writes = [a for a in ROLE_WRITES if _grants(s, a)]
            if writes and "iam:PermissionsBoundary" not in _condition_keys(s):
                yield (f"{label_of(args)} lets {', '.join(writes)} give a role any permissions ({where}, statement "
                       f"{sid}). Condition it on iam:PermissionsBoundary equal to the environment's boundary.")
            escapes = [a for a in BOUNDARY_ESCAPES if _grants(s, a)]
            if escapes:
                yield (f"{label_of(args)} allows {', '.join(escapes)} ({where}, statement {sid}), a way out of any "
                       "permissions boundary. Remove it; boundaries change only through the bootstrap.")
            if _grants(s, "iam:PassRole"):
                if _on_everything(s) or "iam:PassedToService" not in _condition_keys(s):
                    yield (f"{label_of(args)} may pass any role or pass roles to any service ({where}, statement "
                           f"{sid}). Name the roles' ARNs and condition on iam:PassedToService.")


def _ownership(args: ResourceValidationArgs) -> Iterator[str]:
    for where, document in _documents(args):
        for sid, s in _allows(document):
            keys = _condition_keys(s)
            tagging = [a for a in OWNERSHIP_TAGGING if _grants(s, a)]
            owned = any(k.startswith("aws:ResourceTag/") for k in keys) or "ec2:CreateAction" in keys
            if tagging and not owned:
                yield (f"{label_of(args)} may {', '.join(tagging)} on resources of any owner ({where}, statement "
                       f"{sid}), so a tag-based grant can be moved to another environment's resource. Condition "
                       "it on aws:ResourceTag (the resource's current owner) or ec2:CreateAction.")
            wide = [a for a in as_strings(get(s, "Action")) if a in REGION_WIDE]
            if wide and _on_everything(s):
                yield (f"{label_of(args)} allows {', '.join(wide)} on every resource ({where}, statement {sid}). "
                       "List the actions and bound them with resource tags, request tags or resource ARNs.")
            if _grants(s, DNS_WRITE) and RECORD_NAMES not in keys:
                yield (f"{label_of(args)} may change any record of its hosted zones ({where}, statement {sid}). "
                       f"Condition it on {RECORD_NAMES} with the environment's own names.")


def _role_boundaries(stack: Stack) -> Iterator[Finding]:
    def check(role: PolicyResource, props: Mapping[str, Any]) -> Iterator[Finding]:
        if not props.get("permissionsBoundary"):
            yield Finding(f"Role '{role.name}' has no permissions boundary, so nothing caps what its policies grant. "
                          "Keep delivery.permissions_boundary: true (the environment's boundary from ci/bootstrap).",
                          role.urn, environment_of(props))

    yield from guarded(check, stack.known(IAM_ROLE))


POLICIES: list[Policy] = [
    resource_policy("iam-no-admin", "No IAM policy allows every action on every resource.", MANDATORY,
                    [*IAM_POLICY_DOCUMENTS, IAM_ROLE, *IAM_ATTACHMENTS], _iam_no_admin),
    resource_policy("iam-no-escalation",
                    "Role writes stay inside a permissions boundary, no boundary can be escaped, PassRole is scoped.",
                    MANDATORY, [*IAM_POLICY_DOCUMENTS, IAM_ROLE], _escalation),
    resource_policy("iam-ownership-fixed",
                    "Tagging that decides ownership, region-wide service wildcards and DNS writes are bounded.",
                    MANDATORY, [*IAM_POLICY_DOCUMENTS, IAM_ROLE], _ownership),
    *by_environment("iam-role-boundary", "Every role carries the environment's permissions boundary.",
                    _role_boundaries),
]
