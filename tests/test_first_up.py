"""The first `up` in an empty account or project, as the engine orders it: over the plan's dependency
graph (each registration's dependencies, a component standing for everything inside it, a provider for
the cluster it talks to), every resource that a cloud API rejects while something else does not exist yet
is created after it. Mocks accept any order; the clouds do not:

- a GKE Workload Identity binding names `<project>.svc.id.goog`, a pool that exists only once the project's
  first cluster with Workload Identity does ("Identity Pool does not exist",
  terraform-google-modules/terraform-google-kubernetes-engine#916);
- an IRSA role trusts the cluster's OIDC provider, which IAM must know before a pod can assume the role;
- a grant on a bucket (`storage.buckets.setIamPolicy`) fails with 404 on a bucket not yet made.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration

STACKS = ("dev", "prod", "gcp-dev", "gcp-prod")


def after(doc: PlanDocument, res: Registration) -> set[str]:
    """URNs of everything `res` is created after: its dependencies, their parents' contents, transitively."""
    seen: set[str] = set()
    todo = [*res.dependencies, *([res.provider.split("::")[0]] if res.provider else [])]
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        try:
            found = doc.by_urn(urn)
        except (KeyError, LookupError, ValueError):
            continue
        todo += found.dependencies
        if found.provider:
            todo.append(found.provider.split("::")[0])
        if not found.custom:  # a component: waiting on it waits on everything inside it
            todo += [d.urn for d in doc.descendants(urn)]
    return seen


def workload_identity_bindings(doc: PlanDocument) -> Iterator[Registration]:
    for r in doc.by_type("gcp:serviceaccount/iAMMember:IAMMember"):
        if ".svc.id.goog[" in str(r.inputs.get("member")):
            yield r


@pytest.mark.parametrize("stack", ["gcp-dev", "gcp-prod"])
def test_workload_identity_bindings_come_after_the_cluster(plan, stack: str) -> None:
    doc = plan(stack)
    [cluster] = doc.by_type("gcp:container/cluster:Cluster")
    bindings = list(workload_identity_bindings(doc))
    assert bindings
    early = [b.name for b in bindings if cluster.urn not in after(doc, b)]
    assert not early, f"bound before the cluster makes the pool: {early}"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_irsa_roles_come_after_the_oidc_provider(plan, stack: str) -> None:
    doc = plan(stack)
    [oidc] = doc.by_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    roles = [r for r in doc.by_type("aws:iam/role:Role") if "AssumeRoleWithWebIdentity" in str(r.inputs)]
    assert roles
    early = [r.name for r in roles if oidc.urn not in after(doc, r)]
    assert not early, f"trusting an OIDC provider not yet made: {early}"


@pytest.mark.parametrize("stack", ["gcp-dev", "gcp-prod"])
def test_bucket_grants_come_after_their_bucket(plan, stack: str) -> None:
    doc = plan(stack)
    # auto-named: the bucket's name is its resource name plus Pulumi's random suffix
    buckets = {r.name: r.urn for r in doc.by_type("gcp:storage/bucket:Bucket")}
    grants = doc.by_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    assert grants
    for grant in grants:
        assert buckets[grant.inputs["bucket"].rsplit("-", 1)[0]] in after(doc, grant), grant.name
