"""Identities and what they may do: AWS IAM policy documents and attachments, GCP IAM grants
(components/storage per-workload identities, components/cluster node and controller roles)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from policy.rules import stack_rule
from policy.rules.storage import GCS_GRANTS, as_list, statements
from policy.view import Resource, Stack

AWS_DOCUMENTS = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/policy:Policy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
AWS_ROLE = "aws:iam/role:Role"
AWS_ATTACHMENTS = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
)
GCP_PROJECT_GRANTS = ("gcp:projects/iAMMember:IAMMember", "gcp:projects/iAMBinding:IAMBinding")
GCP_ACCOUNT = "gcp:serviceaccount/account:Account"
# AWS managed policies that give every action, or every S3 bucket
BROAD_MANAGED = (
    "AdministratorAccess",
    "PowerUserAccess",
    "IAMFullAccess",
    "AmazonS3FullAccess",
    "AmazonS3ReadOnlyAccess",
)
PROJECT_ADMIN_ROLES = frozenset({"roles/owner", "roles/editor", "roles/storage.admin", "roles/storage.objectAdmin"})
# components/workloads.py KSERVE: the model-serving identity (InferenceServices pull models with it)
SERVING_IDENTITIES = ("kserve",)
S3_READ = re.compile(r"^s3:(Get|List)[A-Za-z]*$")
GCS_READ_ROLES = frozenset(
    {"roles/storage.objectViewer", "roles/storage.legacyObjectReader", "roles/storage.legacyBucketReader"}
)
BUCKET_ARN = re.compile(r"^arn:aws:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?$")


def _documents(stack: Stack) -> Iterator[tuple[Resource, list[dict[str, Any]]]]:
    for doc in stack.of_type(*AWS_DOCUMENTS):
        yield doc, statements(doc.get("policy"))
    for role in stack.of_type(AWS_ROLE):
        for inline in as_list(role.get("inlinePolicies")):
            yield role, statements((inline or {}).get("policy"))


def _allows(statements_: list[dict[str, Any]]) -> Iterator[tuple[set[str], list[str]]]:
    for s in statements_:
        if s.get("Effect") == "Allow":
            yield {str(a) for a in as_list(s.get("Action"))}, [str(r) for r in as_list(s.get("Resource"))]


def _member(grant: Resource) -> list[str]:
    return [str(m) for m in as_list(grant.get("member")) + as_list(grant.get("members"))]


@stack_rule("iam-no-wildcard-admin", "No identity may do every action on every resource")
def iam_no_wildcard_admin(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """Least privilege (AWS IAM User Guide, "Security best practices in IAM": grant least privilege; an
    Allow of Action "*" on Resource "*" is administrator access), and no AWS managed policy with it or
    broader than the platform needs (AdministratorAccess, PowerUserAccess, IAMFullAccess, S3 on every
    bucket)."""
    for res, found in _documents(stack):
        for actions, resources in _allows(found):
            if actions & {"*", "*:*"} and "*" in resources:
                yield res, 'allows Action "*" on Resource "*"'
    for att in stack.of_type(*AWS_ATTACHMENTS):
        arn = str(att.get("policyArn") or "")
        if arn.rsplit("/", 1)[-1] in BROAD_MANAGED:
            yield att, f"attaches {arn}"


@stack_rule("iam-bucket-grants-named", "Storage permissions are granted on named buckets only")
def iam_bucket_grants_named(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """Each workload gets the buckets its spec names and nothing else (components/workloads.py bucket
    grants): S3 actions only on `arn:aws:s3:::<bucket>` or its objects, never `*` or a wildcard bucket
    name; GCS roles only on a bucket (storage.BucketIAMMember), never project-wide (a project grant
    covers every bucket, present and future: Cloud Storage docs, "IAM roles for Cloud Storage")."""
    for res, found in _documents(stack):
        for actions, resources in _allows(found):
            if not any(a == "*" or a.startswith("s3:") for a in actions):
                continue
            bad = [r for r in resources if not BUCKET_ARN.match(r)]
            if bad:
                yield res, f"S3 actions {sorted(actions)} on {bad}"
    for grant in stack.of_type(*GCP_PROJECT_GRANTS):
        if str(grant.get("role", "")).startswith("roles/storage."):
            yield grant, f"project-wide {grant.get('role')} to {_member(grant)}"
    for grant in stack.of_type(*GCS_GRANTS):
        if not grant.get("bucket") or "*" in str(grant.get("bucket")):
            yield grant, f"grant on bucket {grant.get('bucket')!r}"


@stack_rule("iam-serving-read-only", "Serving identities only read the artifacts bucket")
def iam_serving_read_only(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """A model server answers requests from outside; if it is taken over it must not be able to replace
    models (components/workloads.py KSERVE: artifacts read-only). S3: only s3:Get* and s3:List* actions
    in the serving role's policies; GCS: only viewer roles for the serving service account."""
    roles = [r for r in stack.of_type(AWS_ROLE) if _serving(r.name)]
    by_role = {r.urn for r in roles}
    for doc in stack.of_type(*AWS_DOCUMENTS):
        if not (set(doc.dependencies) & by_role) and not _serving(str(doc.get("role") or "")):
            continue
        for actions, _ in _allows(statements(doc.get("policy"))):
            writes = sorted(a for a in actions if (a.startswith("s3:") or a == "*") and not S3_READ.match(a))
            if writes:
                yield doc, f"serving identity may {writes}"
    accounts = {r.urn for r in stack.of_type(GCP_ACCOUNT) if _serving(str(r.get("accountId") or r.name))}
    for grant in stack.of_type(*GCS_GRANTS, *GCP_PROJECT_GRANTS):
        serving = set(grant.dependencies) & accounts or any(_serving(m.split("@")[0]) for m in _member(grant))
        role = str(grant.get("role", ""))
        if serving and role.startswith("roles/storage.") and role not in GCS_READ_ROLES:
            yield grant, f"serving identity has {role}"


def _serving(name: str) -> bool:
    return any(name == s or name.endswith(f"-{s}") for s in SERVING_IDENTITIES)


@stack_rule("iam-no-project-wide-admin", "No project-wide owner, editor or storage admin grants")
def iam_no_project_wide_admin(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """A project-level owner, editor or storage admin grant reaches every bucket and service in the project
    (GCP IAM docs, "Basic roles": avoid in production; Cloud Storage "IAM roles")."""
    for grant in stack.of_type(*GCP_PROJECT_GRANTS):
        if grant.get("role") in PROJECT_ADMIN_ROLES:
            yield grant, f"project-wide {grant.get('role')} to {_member(grant)}"
