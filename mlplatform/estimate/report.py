"""The estimates `plan` prints under the resource tree."""

from __future__ import annotations

from datetime import date

from mlplatform.estimate.cost import estimate_cost
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


def report(doc: PlanDocument, today: date) -> str:
    lines = []
    status = version_support(doc, today)
    if status is not None:
        lines.append(status.describe())
    lines.append(estimate_cost(doc, today).describe())
    lines.append(estimate_up(doc).describe())
    return "\n".join(lines)
