"""The estimates `plan` prints under the resource tree."""

from __future__ import annotations

from datetime import date

from mlplatform.estimate.cost import Rendered, estimate_cost
from mlplatform.estimate.requests import summarize
from mlplatform.estimate.support import SupportStatus, support_status
from mlplatform.estimate.timing import estimate_up
from mlplatform.plan.document import PlanDocument


def kubernetes_minor(doc: PlanDocument) -> tuple[str, str] | None:
    """(cloud, minor) of the plan's cluster: EKS `version`, GKE `minMasterVersion`."""
    for r in doc.resources:
        if r.type == "aws:eks/cluster:Cluster":
            return "aws", str(r.inputs["version"])
        if r.type == "gcp:container/cluster:Cluster":
            return "gcp", str(r.inputs["minMasterVersion"])
    return None


def version_support(doc: PlanDocument, today: date) -> SupportStatus | None:
    found = kubernetes_minor(doc)
    return support_status(found[0], found[1], today) if found else None


def report(doc: PlanDocument, today: date, rendered: Rendered | None = None) -> str:
    """Support window, idle requests, idle cost and `up` time. `rendered` (requests.render_releases): the
    releases whose pods are read as rendered rather than from their values."""
    lines = []
    status = version_support(doc, today)
    if status is not None:
        lines.append(status.describe())
    local = doc.outputs.get("cloud") == "local"
    cost = None if local else estimate_cost(doc, today, rendered)
    # per-node agents count on every node the pods need (one node on local: the quickstart's kind cluster)
    pool_nodes = {p.pool: p.needed for p in cost.pools} if cost is not None and cost.pools else None
    lines.append(summarize(doc, rendered, pool_nodes).describe())
    if cost is None:
        # nothing to price: the stack creates no cloud resource, and the cluster is the deployer's own machine
        lines.append("Cost: none priced on local (no cloud resource; the cluster and its disks are your machine's)")
    else:
        lines.append(cost.describe())
    lines.append(estimate_up(doc).describe())
    return "\n".join(lines)
